"""The exit statuses every `ccc` command uses, and their description in `ccc --help`.

Why one table: scripts branch on the status. "No stack" exited 2 from some commands and 1 from
others (issue 13 §4). The rule is by outcome, not by command: 2 when the command did nothing because
what it was given (arguments, files, the local stack, the trust file) is missing or unusable, 1 when
it ran and the answer is a failure. tests/unit/test_cli_exit_codes.py checks that the codes this
text documents are the ones the commands return.
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_REFUSED = 2
EXIT_INTERRUPTED = 130

EPILOG = f"""\
exit status (every command):
  {EXIT_OK}    success (for submit --wait / result: every job done and its result verified)
  {EXIT_FAILED}    the command ran and failed: a job failed, did not verify or timed out, an unknown
       job, key-policy findings, an attestation that does not verify, trust drift, a
       component that stopped answering
  {EXIT_REFUSED}    nothing was done: bad arguments or input files, no local stack in the state
       directory (or an unusable stack.json), a stack already running there, no trust file
  {EXIT_INTERRUPTED}  interrupted (Ctrl-C)
errors are one line on stderr, never a traceback."""

DOCUMENTED = (EXIT_OK, EXIT_FAILED, EXIT_REFUSED, EXIT_INTERRUPTED)
