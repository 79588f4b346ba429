"""Operations, run with python -m: the launcher, the cluster, throwaway local services,
retention and training."""
