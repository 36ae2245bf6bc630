"""The one error the KMS raises for refused input or actions.

- Every refusal (a wrong passphrase, a tampered sealed blob, an unknown or
  used token, a caller who is not an officer...) is a `KMSError` whose
  message names the problem in words an operator can act on; callers show it
  as is and never parse it.
"""

from __future__ import annotations


class KMSError(Exception):
    """A refused KMS input or action.

    The message names the problem and is shown to the user as is.
    """
