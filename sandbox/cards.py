"""The counter page's test card numbers: like Stripe's, the number decides what the payment does.

All are Luhn-valid 16-digit UnionPay-style numbers; expiry, CVV and holder name are not checked.
The README's table and the page's table are printed from ``TEST_CARDS``.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Card:
    number: str
    action: str  # the engine action the payment runs
    zh: str
    en: str

    @property
    def spaced(self) -> str:
        return " ".join(self.number[i : i + 4] for i in range(0, len(self.number), 4))


TEST_CARDS: list[Card] = [
    Card("6212340000000001", "pay", "支付成功", "Payment succeeds"),
    Card("6212340000000019", "fail", "支付失败：余额不足", "Payment fails: insufficient funds"),
    Card(
        "6212340000000027",
        "fail",
        "支付失败：发卡行拒绝交易",
        "Payment fails: declined by the issuer",
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
