"""The counter page's test card numbers: like Stripe's, the number decides what the payment does.

All are Luhn-valid 16-digit UnionPay-style numbers; expiry, CVV and holder name are not checked.
The README's table and the page's table are printed from ``TEST_CARDS``. The trade records the
card typed, masked as Lakala masks it (first 6 and last 4 digits).
"""

from __future__ import annotations

from dataclasses import dataclass

from sandbox.core.ids import BANKS


@dataclass(frozen=True)
class Card:
    number: str
    action: str  # the engine action the payment runs
    zh: str
    en: str
    # why a failing card fails: the scenario step's ``reason`` (zh, as Lakala words it), and en
    reason: tuple[str, str] | None = None

    @property
    def spaced(self) -> str:
        return " ".join(self.number[i : i + 4] for i in range(0, len(self.number), 4))


TEST_CARDS: list[Card] = [
    Card("6212340000000001", "pay", "支付成功", "Payment succeeds"),
    Card(
        "6212340000000019",
        "fail",
        "支付失败：余额不足",
        "Payment fails: insufficient funds",
        ("余额不足", "insufficient funds"),
    ),
    Card(
        "6212340000000027",
        "fail",
        "支付失败：发卡行拒绝交易",
        "Payment fails: declined by the issuer",
        ("发卡行拒绝交易", "declined by the issuer"),
    ),
    Card(
        "6212340000000035",
        "paying",
        "保持支付中（等待银行确认）",
        "Stays paying (waiting for the bank)",
    ),
    Card(
        "6212340000000043",
        "cancel",
        "持卡人在短信验证时取消",
        "The cardholder cancels at the SMS check",
    ),
]


# Issuers of a few well-known debit BINs: (payer_account_bank, bank_type).
BANKS_BY_BIN: dict[str, tuple[str, str]] = {bin_: (name, code) for name, code, bin_ in BANKS}


def masked(number: str) -> str:
    """``6212340000000001`` -> ``621234******0001``, as Lakala reports ``payer_account_no``."""
    return number[:6] + "*" * (len(number) - 10) + number[-4:]


def payer_fields(number: str) -> dict[str, str]:
    """The trade's payer fields for the card typed. The bank comes from the BIN when it is a
    known one; otherwise the trade keeps the plausible bank the sandbox picked."""
    fields = {"payer_account_no": masked(number)}
    bank = BANKS_BY_BIN.get(number[:6])
    if bank is not None:
        fields["payer_account_bank"], fields["bank_type"] = bank
    return fields


class CardRejected(ValueError):
    """The number is not one of the test cards; ``reason`` is ``invalid`` or ``unknown``."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def luhn_ok(number: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(number)):
        digit = int(ch)
        if i % 2 == 1:
            digit *= 2
            if digit > 9:
                digit -= 9
        total += digit
    return total % 10 == 0


def lookup(raw: str) -> Card:
    """The test card for what a user typed (spaces and dashes allowed)."""
    number = "".join(ch for ch in raw if ch not in " -")
    if (
        not (number.isascii() and number.isdigit())
        or not 12 <= len(number) <= 19
        or not luhn_ok(number)
    ):
        raise CardRejected("invalid")
    for card in TEST_CARDS:
        if card.number == number:
            return card
    raise CardRejected("unknown")


def markdown_table() -> str:
    rows = ["| card number | outcome | 结果 |", "|---|---|---|"]
    rows += [f"| `{c.spaced}` | {c.en} (`{c.action}`) | {c.zh} |" for c in TEST_CARDS]
    return "\n".join(rows)
