# ruff: noqa: E501  (pattern tables read best one alternative per line, however long)
"""One vocabulary for every report: Sisimai's bounce reasons, the class each implies, and how
an SMTP status code or a diagnostic text names a reason.

Classes (what the policy does with a result, see ``services.suppression.bounces``):

========== ==================================================================================
hard       the address itself is permanently bad (no such user, no such domain, null MX)
soft       a failure that says nothing final about the address (mailbox full, suspended,
           system error, timeout...): it counts, and only repeated soft bounces suppress
sender     the sending side's problem (blocklisted IP, spam or policy filter, SPF/DKIM/DMARC,
           rate, relaying denied): never suppresses the recipient, reported to the marketer
complaint  the recipient marked the mail as spam (ARF abuse/fraud/other, JMRP, ESP events)
opt-out    the recipient asked to leave (ARF ``opt-out``, ESP unsubscribe events)
ignore     delayed, delivered, relayed, expanded, or nothing we can act on
========== ==================================================================================

Reasons are Sisimai's (``libsisimai.org/en/reason``): ``userunknown`` (the local part does not
exist: X.1.1), ``hostunknown`` (the domain does not exist: X.1.2), ``notaccept`` (the domain
accepts no mail: null MX, X.1.10, 556), ``hasmoved`` (X.1.6), ``mailboxfull`` (X.2.2),
``exceedlimit`` (X.2.3), ``filtered`` (refused after DATA by the recipient's own filter, X.2.0
/X.2.1), ``suspend`` (the mailbox is disabled), ``blocked`` (the sending IP or HELO refused),
``spamdetected``, ``policyviolation``, ``authfailure`` (SPF/DKIM/DMARC), ``badreputation``,
``requireptr``, ``rejected`` (the envelope sender refused), ``securityerror``,
``virusdetected``, ``contenterror`` (X.6.x), ``mesgtoobig`` (X.3.4), ``norelaying``,
``toomanyconn``, ``ratelimited``, ``systemerror``, ``systemfull``, ``networkerror``,
``expired`` (the retry time ran out, X.4.7), ``notcompliantrfc``, ``syntaxerror``,
``mailererror``, ``onhold`` and ``undefined`` (not decided), ``delivered``, plus ``feedback``
(complaints: ``complaint``) and ``opt-out``.
"""

from __future__ import annotations

import enum
import re


class BounceClass(enum.StrEnum):
    HARD = "hard"
    SOFT = "soft"
    SENDER = "sender"
    COMPLAINT = "complaint"
    OPT_OUT = "opt-out"
    IGNORE = "ignore"


#: Classes that suppress the recipient at once.
SUPPRESSING = frozenset({BounceClass.HARD, BounceClass.COMPLAINT, BounceClass.OPT_OUT})

#: Reasons about the address itself: a permanent failure with one of these is ``hard``.
HARD_REASONS = frozenset({"userunknown", "hostunknown", "notaccept", "hasmoved"})

#: Reasons that are the sending side's problem.
SENDER_REASONS = frozenset({
    "blocked", "spamdetected", "policyviolation", "authfailure", "badreputation", "requireptr",
    "rejected", "securityerror", "virusdetected", "contenterror", "norelaying", "toomanyconn",
    "ratelimited", "notcompliantrfc", "syntaxerror",
})

#: Reasons that say nothing final about anyone.
SOFT_REASONS = frozenset({
    "mailboxfull", "exceedlimit", "filtered", "suspend", "mesgtoobig", "systemerror", "systemfull",
    "networkerror", "expired", "mailererror", "undefined", "onhold",
})

#: Every reason a result may carry.
REASONS = HARD_REASONS | SENDER_REASONS | SOFT_REASONS | {"delivered", "complaint", "opt-out", "unsubscribed"}

#: RFC 3463 / RFC 5248 enhanced status codes, by "subject.detail" (the class digit aside).
STATUS_REASONS: dict[str, str] = {
    "1.1": "userunknown", "1.2": "hostunknown", "1.3": "userunknown", "1.4": "userunknown",
    "1.6": "hasmoved", "1.7": "rejected", "1.8": "rejected", "1.10": "notaccept",
    "2.0": "filtered", "2.1": "filtered", "2.2": "mailboxfull", "2.3": "exceedlimit", "2.4": "systemerror",
    "3.0": "systemerror", "3.1": "systemfull", "3.2": "notaccept", "3.3": "systemerror", "3.4": "mesgtoobig",
    "3.5": "systemerror",
    "4.0": "networkerror", "4.1": "networkerror", "4.2": "networkerror", "4.3": "systemerror",
    "4.4": "hostunknown", "4.5": "toomanyconn", "4.6": "networkerror", "4.7": "expired",
    "5.0": "syntaxerror", "5.1": "syntaxerror", "5.2": "syntaxerror", "5.3": "exceedlimit", "5.4": "syntaxerror",
    "5.5": "syntaxerror",
    "6.0": "contenterror", "6.1": "contenterror", "6.2": "contenterror", "6.3": "contenterror",
    "6.4": "contenterror", "6.5": "contenterror",
    "7.0": "securityerror", "7.1": "policyviolation", "7.2": "securityerror", "7.3": "securityerror",
    "7.4": "securityerror", "7.5": "securityerror", "7.6": "securityerror", "7.7": "securityerror",
    "7.8": "securityerror", "7.9": "securityerror", "7.10": "securityerror", "7.11": "securityerror",
    "7.12": "securityerror", "7.13": "suspend", "7.14": "securityerror", "7.15": "securityerror",
    "7.16": "securityerror", "7.17": "suspend", "7.18": "suspend", "7.19": "securityerror",
    "7.20": "authfailure", "7.21": "authfailure", "7.22": "authfailure", "7.23": "authfailure",
    "7.24": "authfailure", "7.25": "requireptr", "7.26": "authfailure", "7.27": "notaccept",
    "7.28": "spamdetected", "7.29": "authfailure", "7.30": "authfailure",
}

STATUS_RE = re.compile(r"(?<![\d.])([245])\.(\d{1,3})\.(\d{1,3})(?![\d.])")
REPLY_RE = re.compile(r"(?<![\d.#-])([245][0-5]\d)(?:[ -]|$)")


def status_reason(status: str | None) -> str | None:
    """``5.1.1`` -> ``userunknown``; ``None`` for a generic or unknown code (X.0.0)."""
    match = STATUS_RE.search(status or "")
    if not match:
        return None
    return STATUS_REASONS.get(f"{match.group(2)}.{match.group(3)}")


def find_status(text: str | None) -> str | None:
    """The first enhanced status code written in ``text`` (``5.1.1``), if any."""
    match = STATUS_RE.search(text or "")
    return match.group(0) if match else None


def find_reply_code(text: str | None) -> int | None:
    """The first SMTP reply code (``550``) written in ``text``, if any."""
    match = REPLY_RE.search(text or "")
    return int(match.group(1)) if match else None


def _rx(*patterns: str) -> re.Pattern:
    return re.compile("|".join(f"(?:{p})" for p in patterns), re.IGNORECASE)


#: Diagnostic-text patterns, checked in this order: the first that matches names the reason.
#: Sender-side causes come first: a refusal that mentions both a blocklist and the
#: recipient is about the sender.
TEXT_REASONS: list[tuple[str, re.Pattern]] = [
    # Callout verification of the *sender* address ("550-Verification failed for <sender>"):
    # whatever else the reply says, it is about our envelope sender.
    ("rejected_strong", _rx(r"sender verify failed", r"verification failed for <", r"sender address rejected",
                            r"sender verification failed", r"could not verify sender")),
    # A delivery program (pipe, procmail, maildrop) that failed at the receiving host: its exit
    # status is not a verdict on the address, whatever status the MTA derived from it.
    ("mailererror", _rx(r"command output:", r"command died with status", r"command failed:", r"\bprocmail: ",
                        r"bin/procmail", r"bin/maildrop", r"pipe to \|", r"mailer error", r"\|\| exit ")),
    # cPanel Exim's ``cannot_route_message`` (its wording for "Unrouteable address"): it lists
    # "blacklisted" among the possibilities, so it must come before the blocklist words.
    ("hostunknown_strong", _rx(r"the account or domain may not exist")),
    ("authfailure", _rx(r"\bspf\b.{0,40}(?:fail|check|record|validat|not)", r"(?:fail|did not pass).{0,20}\bspf\b",
                        r"\bdkim\b.{0,30}(?:fail|invalid|missing|signature)", r"\bdmarc\b",
                        r"sender policy framework", r"not authenticated .{0,40}(?:spf|dkim)",
                        r"unauthenticated (?:email|mail|sender)", r"\bsender (?:is )?(?:not )?authenticat")),
    ("requireptr", _rx(r"reverse dns", r"\bptr\b(?: record)?", r"no (?:rdns|reverse)", r"cannot find your hostname",
                       r"client host .{0,40} (?:has no|without) .{0,20}(?:hostname|rdns)",
                       r"ip name lookup failed", r"cannot resolve your address")),
    ("badreputation", _rx(r"\breputation\b", r"poor reputation", r"sender score")),
    ("virusdetected", _rx(r"\bvirus", r"malware", r"infected", r"executable attachment")),
    ("spamdetected", _rx(r"\bspam\b", r"\bspamhaus\b", r"\bunsolicited\b", r"bulk mail", r"junk mail",
                         r"message (?:was )?(?:classified|identified|considered|detected|flagged) as",
                         r"content (?:filter|rejected)", r"\buce\b", r"blacklisted url", r"probable spam",
                         r"rejected as spam", r"mail appears to be")),
    ("blocked", _rx(r"black ?list", r"block ?list", r"\bblocked\b", r"\bdnsbl\b", r"\brbl\b", r"listed (?:in|on|at|by) .{0,40}(?:bl\b|black|block|spam|rbl|dnsbl|list)",
                    r"\bsbl\b", r"\bxbl\b", r"\bpbl\b", r"client host .{0,60} refused", r"(?<!rejected: )access denied",
                    r"connection refused", r"not allowed to send", r"ip (?:address )?(?:has been|is) (?:block|ban|reject)",
                    r"your (?:ip|host|server|network)", r"\bbanned\b", r"helo command rejected",
                    r"invalid helo", r"hostname rejected", r"rejected due to.{0,20}ip", r"dynamic ip",
                    r"residential", r"barracuda", r"refused to talk", r"sorry, that domain isn.t in my list",
                    r"mail server.{0,40}is not permitted", r"too many (?:bad|invalid) recipients",
                    r"rejected because.{0,30}(?:ip|host)", r"\bpolicy rejection\b", r"administrative prohibition")),
    ("ratelimited", _rx(r"rate limit", r"too many (?:messages|emails|mails)", r"(?:sending|message) rate",
                        r"throttl", r"temporarily deferred", r"exceeded .{0,20}(?:quota of messages|rate)",
                        r"try again later.{0,40}volume")),
    ("toomanyconn", _rx(r"too many (?:connections|concurrent|sessions)", r"connection limit",
                        r"too many simultaneous")),
    ("norelaying", _rx(r"relay(?:ing)? (?:access )?(?:denied|not permitted|not allowed|prohibited)",
                       r"unable to relay", r"not permitted to relay", r"we do not relay", r"relay not")),
    ("securityerror", _rx(r"authentication required", r"\bauth(?:entication)? (?:failed|error)", r"\btls\b.{0,30}required",
                          r"encryption required", r"\bstarttls\b", r"certificate")),
    # The envelope sender refused (Sisimai's ``rejected``): about our MAIL FROM, not the recipient.
    ("rejected", _rx(r"invalid sender\b", r"\bsender (?:address )?(?:is )?(?:invalid|blacklisted|not allowed|banned)",
                     r"null sender is not allowed", r"empty envelope senders?", r"unroutable sender",
                     r"sender domain (?:is empty|listed)", r"server does not accept mail from",
                     r"not allowed to post to this (?:mailing )?list", r"members-only list",
                     r"too many spam complaints", r"your (?:e-?mail )?address has been blacklisted",
                     r"mail from not owned by user", r"outgoing mail suspension", r"but sender was rejected")),
    ("policyviolation", _rx(r"\bpolicy\b", r"prohibited", r"not permitted", r"disallowed",
                            r"message rejected due to local policy", r"domain of sender address .{0,30} does not",
                            r"header (?:check|error)")),
    ("mesgtoobig", _rx(r"message (?:size|file too big|too (?:large|big|long))", r"size limit",
                       r"exceeds? (?:the )?(?:maximum|size)", r"too large", r"message length exceeds",
                       r"maximum message size")),
    ("mailboxfull", _rx(r"mailbox (?:is )?full", r"over ?quota", r"quota (?:exceeded|full)", r"exceeded.{0,30}quota",
                        r"mailbox .{0,30}(?:exceeded|exceeds|size limit)", r"insufficient (?:disk|storage) space",
                        r"mail ?box (?:is )?over", r"not enough (?:storage|space)", r"user.{0,20}over.{0,10}quota",
                        r"storage allocation", r"mailfolder is full", r"full mailbox", r"not enough disk space")),
    ("exceedlimit", _rx(r"exceeds? .{0,20}(?:mailbox )?(?:size )?limit")),
    ("suspend", _rx(r"\b(?:account|mailbox|user|address) (?:is )?(?:disabled|suspended|inactive|deactivated|locked|"
                    r"expired|not active|temporarily)", r"(?:disabled|suspended|inactive|deactivated|blocked) "
                    r"(?:account|mailbox|user)", r"\bsuspended\b", r"has been disabled", r"is disabled",
                    r"not currently active", r"account expired", r"inactive account", r"account .{0,20}frozen")),
    ("filtered_strong", _rx(r"recipient preferences", r"domain filter", r"rejected by (?:the )?(?:recipient|domain) filter",
                            r"refused by recipient", r"user refuses")),
    ("hasmoved", _rx(r"has moved", r"has been moved", r"is no longer (?:available|valid) .{0,30}(?:new|forward)",
                     r"address changed")),
    ("networkerror_strong", _rx(r"host not found, try again", r"name service error.{0,60}try again")),
    ("hostunknown", _rx(r"host (?:or domain )?(?:name )?(?:not found|unknown)", r"unknown host",
                        r"domain (?:name )?(?:not found|does not exist|unknown|does ?n.t exist|lookup failed)",
                        r"no such domain", r"name service error", r"host not found", r"unrouteable address",
                        r"unrouteable mail domain", r"(?:mx|a) record.{0,30}(?:not found|for.{0,30}does not exist)",
                        r"no mx", r"nxdomain", r"unknown domain", r"domain .{0,40}not (?:exist|found|valid)",
                        r"all relevant mx records point to non-existent hosts", r"ambiguous (?:host|domain)",
                        r"recipient domain .{0,30}(?:invalid|not exist)", r"couldn.t find any host named",
                        r"host unknown", r"unable to resolve", r"no route to host", r"domain is not reachable",
                        r"(?<![@\w.-])(?:[a-z0-9-]+\.)+[a-z]{2,} does not exist",
                        r"dns (?:error|query).{0,30}(?:failed|not found|nxdomain)")),
    ("notaccept", _rx(r"does not accept mail", r"indicated no smtp service", r"null mx", r"accepts no mail", r"not accepting (?:any )?mail",
                      r"mail (?:is )?not accepted", r"mx.{0,20}null", r"this domain (?:does not|doesn.t) receive")),
    ("userunknown", _rx(r"user (?:is )?unknown", r"unknown (?:user|recipient|mailbox|local ?part|address|account)",
                        r"no such (?:user|recipient|mailbox|address|account|person|local user)",
                        r"(?:user|recipient|mailbox|address|account)(?: name)? (?:does not|doesn.t|did not) exist",
                        r"(?:user|recipient|mailbox|address|account|mailbox name)(?: is)? (?:not found|invalid|unavailable|not exist)",
                        r"invalid (?:user|recipient|mailbox|address|account)", r"not a valid (?:user|recipient|mailbox)",
                        r"(?:recipient )?address rejected(?:\.|$|\s*\(|,? user)", r"user not (?:found|known|exist|listed)",
                        r"mailbox not (?:found|available|exist)", r"(?:user|recipient) (?:is )?not (?:found|here|listed|local)",
                        r"no mailbox", r"mailbox unavailable", r"invalid mailbox", r"unknown or illegal alias",
                        r"bad destination (?:mailbox|email)", r"undeliverable address", r"email account that you tried to reach does not exist",
                        r"dd this user doesn.t have", r"doesn.t have a .{0,20}account", r"no mailbox here by that name",
                        r"address (?:does not exist|unknown|invalid|not exist)", r"not our customer",
                        r"retry timeout exceeded.{0,10}$", r"destination (?:mailbox|address) (?:unavailable|invalid)",
                        r"unknown address", r"unrouteable", r"no valid recipients", r"is not a known user",
                        r"user (?:does not|doesn.t) exist", r"mailbox (?:does not|doesn.t) exist",
                        r"recipient not found", r"account (?:does not|doesn.t) exist", r"no longer (?:valid|exists|available)",
                        r"unknown local", r"not listed in", r"user .{0,40} not found", r"sorry, no mailbox",
                        r"there is no one", r"mailbox has been (?:deleted|removed)", r"invalid final delivery userid",
                        r"recipient address rejected: access denied", r"name is not recognized",
                        r"recipientnotfound", r"wasn.t found at the destination",
                        # Gmail's own verdict ("** Address not found ** ... because the address
                        # couldn't be found"), written when the remote reply is not quoted.
                        r"because the address couldn.t be found")),
    ("filtered", _rx(r"\bfilter", r"refused by recipient", r"recipient .{0,30}refuse", r"rejected by (?:the )?recipient",
                     r"user refuses", r"domain .{0,20}rejected")),
    ("expired", _rx(r"retry time", r"delivery time expired", r"message (?:has been )?(?:in the queue|queued) too long",
                    r"could not be delivered (?:for|within)", r"time(?:d)? ?out", r"giving up", r"expired",
                    r"retry timeout", r"delivery (?:has )?failed after", r"\bhas not been delivered .{0,40} (?:hours|days)",
                    r"unable to deliver .{0,30} (?:hours|days)")),
    ("systemfull", _rx(r"disk full", r"out of (?:disk|storage)", r"system full", r"insufficient system storage")),
    ("networkerror", _rx(r"host not found, try again", r"connection (?:timed out|reset|closed|lost|dropped)", r"network (?:error|unreachable)",
                         r"mail loop", r"loop(?:s)? back", r"too many hops", r"routing loop", r"lost connection",
                         r"could not connect", r"can.t connect", r"unable to connect")),
    ("systemerror", _rx(r"system error", r"internal error", r"server error", r"temporary (?:failure|error|problem)",
                        r"local error", r"service (?:not available|unavailable)", r"try again later",
                        r"resources temporarily", r"mail system (?:problem|error)")),
    ("syntaxerror", _rx(r"syntax error", r"command unrecognized", r"bad sequence of commands")),
]


def text_reason(text: str | None) -> str | None:
    """The reason a diagnostic text names, or None."""
    if not text:
        return None
    flat = " ".join(text.split())
    for reason, pattern in TEXT_REASONS:
        if pattern.search(flat):
            return reason.removesuffix("_strong")
    return None
