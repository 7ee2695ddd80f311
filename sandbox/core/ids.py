"""Order and trade numbers shaped like Lakala's, and payer data; reproducible with ``--seed``."""

from __future__ import annotations

import random
import threading
from datetime import datetime
from typing import Any

from sandbox.wire.vocabulary import CARD_MODES

SCAN_MODES = {"ALIPAY", "WECHAT", "UNION", "BESTPAY", "JDBT", "ALIPAY_HK", "HB_FQ"}
BANKS = [  # (payer_account_bank, bank_type, a debit BIN of theirs)
    ("招商银行", "CMB", "622588"),
    ("中国工商银行", "ICBC", "622202"),
    ("中国建设银行", "CCB", "621700"),
    ("中国银行", "BOC", "621661"),
    ("中国农业银行", "ABC", "622848"),
]


_MAIL_DOMAINS = ("163.com", "qq.com", "126.com", "sina.com", "outlook.com")
_OPENID_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


class Ids:
    def __init__(self, seed: int | None = None) -> None:
        self.seed = seed
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        self._faker: Any = None
        self._warm_at_first_number = False

    def reset(self) -> None:
        """Start the numbers over, as a fresh ``Ids(seed)`` would (seeded: the same ones)."""
        with self._lock:
            self._rng = random.Random(self.seed)
            if self._faker is not None:  # (making a new one costs a few milliseconds)
                self._faker.seed_instance(
                    self.seed if self.seed is not None else self._rng.randrange(2**32)
                )

    def digits(self, n: int) -> str:
        with self._lock:
            return str(self._rng.randrange(10**n)).zfill(n)

    def pay_order_no(self, now: datetime) -> str:
        if self._warm_at_first_number:
            self._warm_at_first_number = False
            self.warm_soon()
        # 29 digits like 21092211012001970631000488056: yyMMdd, then a serial
        return now.strftime("%y%m%d") + "11012" + self.digits(18)

    def trade_numbers(self, now: datetime) -> dict[str, str]:
        """A new trade's numbers, shaped as in Lakala's notifies: a 14-digit ``log_no`` starting
        66, and a ``trade_no`` that is the trade's date followed by that ``log_no``."""
        log_no = "66" + self.digits(12)
        return {
            "trade_no": now.strftime("%Y%m%d") + log_no,
            "log_no": log_no,
            "trade_ref_no": self.digits(12),
        }

    def acc_trade_no(self, pay_mode: str, now: datetime) -> str:
        if pay_mode in ("ALIPAY", "ALIPAY_HK", "HB_FQ"):
            return now.strftime("%Y%m%d") + "22001" + self.digits(15)
        if pay_mode == "WECHAT":
            return "42000" + self.digits(5) + now.strftime("%Y%m%d") + self.digits(10)
        return now.strftime("%Y%m%d") + self.digits(16)

    def warm_at_first_number(self) -> None:
        """Have the first order number drawn start ``warm`` on a thread of its own: payers come
        after orders, and a sandbox that is only started (as most test runs start one) or only
        queried never pays for Faker."""
        self._warm_at_first_number = True

    def warm_soon(self) -> None:
        """``warm`` on a thread of its own, now."""
        threading.Thread(target=self.warm, name="lakala-sandbox-warm", daemon=True).start()

    def warm(self) -> None:
        """Make the payer-name generator now rather than on the first pay: importing Faker and
        making its generator takes about a fifth of a second. Made outside the lock, so that
        numbers drawn meanwhile (the next orders' and trades') do not wait for it."""
        if self._faker is not None:  # (a pay came first and made it)
            return
        names = self._new_names(None)
        with self._lock:
            if self._faker is None:
                self._faker = names

    def _new_names(self, seed: int | None) -> Any:
        from faker import Faker

        names = Faker("zh_CN")
        names.seed_instance(self.seed if self.seed is not None else seed)
        return names

    def _names(self) -> Any:
        """The payer-name generator (under the lock)."""
        if self._faker is None:
            self._faker = self._new_names(
                None if self.seed is not None else self._rng.randrange(2**32)
            )
        return self._faker

    def payer(self, pay_mode: str) -> dict[str, Any]:
        """Trade fields about the payer, as Lakala fills them for this pay mode."""
        with self._lock:
            name = self._names().name()
            bank_name, bank_type, bin_ = BANKS[self._rng.randrange(len(BANKS))]
            uid = str(self._rng.randrange(10**12)).zfill(12)
            login = self._names().user_name()
            # WeChat-style openids: "o" and 27 characters
            openids = ["o" + "".join(self._rng.choices(_OPENID_ALPHABET, k=27)) for _ in "12"]
        masked_name = "*" + name[1:]
        if pay_mode in CARD_MODES:
            return {
                "payer_account_no": f"{bin_}******{uid[-4:]}",
                "payer_name": masked_name,
                "payer_account_bank": bank_name,
                "bank_type": bank_type,
                "acc_type": "01" if pay_mode in ("UNION_CC", "UNION_FQ") else "00",
                "user_id1": None,
                "user_id2": None,
            }
        if pay_mode in ("ALIPAY", "ALIPAY_HK", "HB_FQ"):
            # as in Lakala's notifies: the masked Alipay logon, then the 2088… user id
            return {
                "user_id1": f"{login[:3]}***@{_MAIL_DOMAINS[int(uid[0]) % len(_MAIL_DOMAINS)]}",
                "user_id2": "2088" + uid,
                "payer_name": masked_name,
                "payer_account_no": None,
                "payer_account_bank": None,
                "acc_type": "04",
                "bank_type": None,
            }
        if pay_mode == "WECHAT":
            # the payer's openid under the sub-merchant's app, then under the acquirer's
            return {
                "user_id1": openids[0],
                "user_id2": openids[1],
                "payer_name": masked_name,
                "payer_account_no": None,
                "payer_account_bank": None,
                "acc_type": "99",
                "bank_type": "OTHERS",
            }
        return {
            "user_id1": uid,
            "user_id2": None,
            "payer_name": masked_name,
            "payer_account_no": None,
            "payer_account_bank": None,
            "acc_type": "99",
            "bank_type": None,
        }
