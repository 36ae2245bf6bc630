"""The one error the CA raises for refused input or actions.

- Every refusal (a weak hash, an unknown profile, a request whose signature
  does not verify...) is a `CAError` whose message names the problem in words
  a CA officer can act on; callers show it as is and never parse it.
"""

from __future__ import annotations


class CAError(Exception):
    """A refused CA input or action.

    The message names the problem and is shown to the user as is.
    """
