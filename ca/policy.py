"""Policy modules: who decides whether a request is issued (a registry).

- Every request is recorded first; the profile's policy module then
  issues it at once, leaves it pending for a CA officer (`certdir ca
  approve`/`deny`), or refuses it.
- `auto` issues every request for the profile.
- `officer` issues what an officer submits (`certdir ca issue`) and keeps
  everything else pending until an officer decides.
- `acme` issues what the ACME server submits (it has validated control of
  every name in the request, RFC 8555 §7.5) and what an officer submits;
  everything else waits for an officer, as with `officer`.
- tls-server defaults to `acme`: with the ACME server off, or for
  anything but an ACME order, that is `officer`; an order that validated
  every name issues without an officer, as ACME clients expect.
- `kms` is the key-management service's hook: requests the KMS submits
  (it has checked the enrollment token) are issued, officers may still
  issue, anything else is refused.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping
from dataclasses import dataclass


class Origin(enum.Enum):
    OFFICER = "officer"      # the CA administrator, on the CA's own machine
    REQUESTER = "requester"  # anyone submitting a request to the queue
    KMS = "kms"
    ACME = "acme"  # the ACME server, once every identifier of the order validated


class Decision(enum.Enum):
    ISSUE = "issue"
    PENDING = "pending"
    DENY = "deny"


@dataclass(frozen=True, slots=True)
class Submission:
    profile: str
    entry: str | None
    origin: Origin


Policy = Callable[[Submission], tuple[Decision, str]]


def _auto(_: Submission) -> tuple[Decision, str]:
    return Decision.ISSUE, "issued automatically"


def _officer(submission: Submission) -> tuple[Decision, str]:
    if submission.origin is Origin.OFFICER:
        return Decision.ISSUE, "issued by an officer"
    return Decision.PENDING, "waiting for a CA officer's approval"


def _acme(submission: Submission) -> tuple[Decision, str]:
    if submission.origin in (Origin.ACME, Origin.OFFICER):
        return Decision.ISSUE, f"issued for the {submission.origin.value}"
    return Decision.PENDING, "waiting for a CA officer's approval"


def _kms(submission: Submission) -> tuple[Decision, str]:
    if submission.origin in (Origin.KMS, Origin.OFFICER):
        return Decision.ISSUE, f"issued for the {submission.origin.value}"
    return Decision.DENY, f"profile {submission.profile} is issued through the KMS only"


POLICIES: Mapping[str, Policy] = {"auto": _auto, "officer": _officer, "acme": _acme,
                                  "kms": _kms}

DEFAULT_POLICIES: Mapping[str, str] = {
    "smime-user": "officer",
    # The key-management service's pair: issued through enrollment tokens.
    "smime-signing": "kms",
    "smime-encryption": "kms",
    "tls-server": "acme",
    "tls-client": "officer",
    "sub-ca": "officer",
    "ocsp-signing": "officer",
}


def decide(policies: Mapping[str, str], submission: Submission) -> tuple[str, Decision, str]:
    """The policy module's name, its decision and why."""
    name = policies.get(submission.profile, "officer")
    decision, why = POLICIES[name](submission)
    return name, decision, why
