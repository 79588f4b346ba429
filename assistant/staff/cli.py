"""``make staff``: the staff console's accounts, from the server's command line.

    make staff ARGS="add reception@clinic.example"     # asks for a password
    make staff ARGS="list"
    make staff ARGS="reset reception@clinic.example"   # a new password; signs them out
    make staff ARGS="remove reception@clinic.example"  # signs them out at once

The password comes from ``STAFF_PASSWORD`` when it is set (for scripts),
otherwise it is asked for twice without echo. Accounts live in the requests
database (``REQUESTS_DB_URL``, default var/requests.db), where the bot reads them.
"""

from __future__ import annotations

import argparse
import getpass
import os
import sys
from typing import List, Optional

from assistant.callback_requests.store import CallbackStore, store_for, store_url
from assistant.staff.accounts import AccountError, Accounts, check_password
from assistant.staff.inbox import Inbox, command_line_user, run_staff_command

PASSWORD_ENV = "STAFF_PASSWORD"


def read_password() -> str:
    from_env = os.environ.get(PASSWORD_ENV)
    if from_env is not None:
        return from_env
    password = getpass.getpass("Password: ")
    check_password(password)  # say so before asking for it again
    if getpass.getpass("Password again: ") != password:
        raise AccountError("the two passwords differ")
    return password


def run(args: argparse.Namespace, store: CallbackStore) -> int:
    accounts = Accounts(store)
    audit = Inbox(store)
    if args.command == "list":
        emails = accounts.emails()
        print("\n".join(emails) if emails else "No staff accounts yet: make staff ARGS=\"add EMAIL\"")
    elif args.command == "remove":
        accounts.remove(args.email)
        audit.record(command_line_user(), "account_removed", detail=args.email.strip().lower())
        print(f"Removed {args.email}.")
    else:
        password = read_password()
        if args.command == "add":
            account = accounts.add(args.email, password)
            print(f"Added {account.email}. Sign in at /staff/ on the bot's address.")
        else:
            account = accounts.reset(args.email, password)
            print(f"New password set for {account.email}; their sessions have ended.")
        audit.record(command_line_user(), f"account_{args.command}", detail=account.email)
    return 0


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="make staff", description="Staff console accounts.")
    commands = parser.add_subparsers(dest="command", required=True)
    for name, text in (("add", "create an account"), ("reset", "set a new password"),
                       ("remove", "delete an account")):
        commands.add_parser(name, help=text).add_argument("email")
    commands.add_parser("list", help="list the accounts")
    args = parser.parse_args(argv)

    store = store_for(store_url())
    return run_staff_command(lambda: run(args, store), refused=(AccountError,))


if __name__ == "__main__":
    sys.exit(main())
