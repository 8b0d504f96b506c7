"""Configuration of the rules engine: every threshold and policy, with the defaults of
``services/compliance/examples/cases-examples.yaml`` (``defaults``)."""

from __future__ import annotations

from datetime import date, time
from decimal import Decimal
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

CountingMethod = Literal["direction_change", "per_opening_transaction"]
ClosePolicy = Literal["block", "warn"]
PdtEquityDefinition = Literal["min_previous_current", "previous_close", "current"]
_DEFAULT_METHODS: dict[str, CountingMethod] = {"alpaca": "direction_change", "ibkr": "per_opening_transaction"}


def parse_clock(value: Any) -> time:
    """Parse ``HH:MM`` (PyYAML may hand sexagesimal ``15:30`` over as the int 930)."""
    if isinstance(value, time):
        return value
    if isinstance(value, int):
        return time(value // 60, value % 60)
    text = str(value).strip()
    hours, minutes = text.split(":")[:2]
    return time(int(hours), int(minutes[:2]))


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")


class CommissionSchedule(_Frozen):
    """Per-contract option commission by premium tier, with a per-order minimum."""

    per_contract_premium_ge_0_10: Decimal = Decimal("0")
    per_contract_0_05_to_0_10: Decimal = Decimal("0")
    per_contract_below_0_05: Decimal = Decimal("0")
    min_per_order: Decimal = Decimal("0")

    def rate_for(self, premium: Decimal) -> Decimal:
        if premium >= Decimal("0.10"):
            return self.per_contract_premium_ge_0_10
        if premium >= Decimal("0.05"):
            return self.per_contract_0_05_to_0_10
        return self.per_contract_below_0_05


def _commission(raw: Any) -> CommissionSchedule:
    if isinstance(raw, CommissionSchedule):
        return raw
    raw = dict(raw or {})
    if "per_contract" in raw:
        flat = raw.pop("per_contract")
        for key in ("per_contract_premium_ge_0_10", "per_contract_0_05_to_0_10", "per_contract_below_0_05"):
            raw.setdefault(key, flat)
    return CommissionSchedule.model_validate({k: Decimal(str(v)) for k, v in raw.items() if v is not None})


class RegimeSwitch(_Frozen):
    finra_effective: date = date(2026, 6, 4)
    phase_in_end: date = date(2027, 10, 20)
    alpaca_switched: date = date(2026, 6, 4)
    other_brokers_phase_in: Literal["legacy_pdt", "intraday_margin"] = "legacy_pdt"


class RulesConfig(_Frozen):
    """All thresholds and policies of RULES.md section 7."""

    pdt_min_equity: Decimal = Decimal("25000")
    pdt_window_sessions: int = 5
    pdt_max_day_trades_under_min_equity: int = 3
    pdt_equity_definition: PdtEquityDefinition = "min_previous_current"
    apply_six_percent_exemption: bool = False
    six_percent_threshold: Decimal = Decimal("0.06")
    counting_method: dict[str, CountingMethod] = Field(default_factory=lambda: dict(_DEFAULT_METHODS))
    default_counting_method: CountingMethod = "per_opening_transaction"
    ibkr_counter_overrides_local: bool = True
    pdt_close_policy: ClosePolicy = "block"
    market_order_price_buffer_pct: Decimal = Decimal("5")
    market_order_price_step: Decimal = Decimal("0.01")
    max_snapshot_age_s: Decimal = Decimal("60")
    max_quote_age_s: Decimal = Decimal("60")
    options_multiplier: int = 100
    commission: dict[str, CommissionSchedule] = Field(
        default_factory=lambda: {
            "alpaca": CommissionSchedule(),
            "ibkr": CommissionSchedule(
                per_contract_premium_ge_0_10=Decimal("0.65"),
                per_contract_0_05_to_0_10=Decimal("0.50"),
                per_contract_below_0_05=Decimal("0.25"),
                min_per_order=Decimal("1.00"),
            ),
        }
    )
    regulatory_fee_per_contract: Decimal = Decimal("0")
    session_open_et: time = time(9, 30)
    session_close_et: time = time(16, 0)
    late_close_et: time = time(16, 15)
    late_close_products: tuple[str, ...] = ("SPY", "QQQ", "IWM", "DIA", "SPX", "NDX", "RUT")
    late_close_regular_close_on_expiry_day: bool = True
    ibkr_reset_windows_et: tuple[tuple[time, time], ...] = (
        (time(23, 45), time(0, 45)),
        (time(0, 15), time(1, 45)),
    )
    ibkr_weekend_reset_et: tuple[tuple[int, time], tuple[int, time]] | None = ((4, time(23, 0)), (5, time(3, 0)))
    regime_switch: RegimeSwitch = RegimeSwitch()
    margin_min_equity: Decimal = Decimal("2000")
    naked_rate: Decimal = Decimal("0.20")
    naked_rate_broad_index: Decimal = Decimal("0.15")
    naked_min_rate: Decimal = Decimal("0.10")
    broad_based_index_roots: tuple[str, ...] = (
        "SPX", "SPXW", "XSP", "NDX", "NDXP", "RUT", "RUTW", "MRUT", "DJX", "OEX", "XEO", "VIX", "VIXW",
    )
    reserve_working_orders: bool = True

    @field_validator("commission", mode="before")
    @classmethod
    def _commissions(cls, value: Any) -> dict[str, CommissionSchedule]:
        return {str(k): _commission(v) for k, v in dict(value).items()}

    def counting_method_for(self, broker: str) -> CountingMethod:
        return self.counting_method.get(broker, self.default_counting_method)

    def commission_for(self, broker: str) -> CommissionSchedule:
        return self.commission.get(broker, CommissionSchedule())

    @classmethod
    def from_mapping(cls, raw: dict[str, Any] | None, base: RulesConfig | None = None) -> RulesConfig:
        """Build a config from a ``defaults`` mapping (or a per-case ``config`` override)."""
        data: dict[str, Any] = base.model_dump() if base is not None else {}
        for key, value in (raw or {}).items():
            _apply(data, key, value)
        return cls.model_validate(data)


def _dec(value: Any) -> Decimal:
    return Decimal(str(value))


def _apply(data: dict[str, Any], key: str, value: Any) -> None:
    if value is None:
        return
    if key == "day_trade_counting_method":
        methods = dict(data.get("counting_method") or {})
        if isinstance(value, str):
            methods = {"alpaca": value, "ibkr": value}
            data["default_counting_method"] = value
        else:
            for broker, method in dict(value).items():
                if broker == "ibkr_counter_overrides_local":
                    data["ibkr_counter_overrides_local"] = bool(method)
                elif broker == "default":
                    data["default_counting_method"] = method
                else:
                    methods[str(broker)] = method
        data["counting_method"] = methods
    elif key == "pdt_equity_definition":
        text = str(value).lower()
        if text in ("min_previous_current", "previous_close", "current"):
            data[key] = text
        elif "min" in text:
            data[key] = "min_previous_current"
        elif "previous" in text or "last" in text:
            data[key] = "previous_close"
        else:
            data[key] = "current"
    elif key == "market_order_price_rounding":
        text = str(value)
        digits = [tok for tok in text.replace(",", " ").split() if tok.replace(".", "", 1).isdigit()]
        if digits:
            data["market_order_price_step"] = _dec(digits[0])
    elif key == "regulatory_fees_in_tests":
        data["regulatory_fee_per_contract"] = _dec(value)
    elif key == "commission":
        merged = dict(data.get("commission") or {})
        for broker, schedule in dict(value).items():
            merged[str(broker)] = _commission(schedule)
        data["commission"] = merged
    elif key == "options_session_et":
        _apply_session(data, dict(value))
    elif key == "ibkr_reset_windows_et":
        data[key] = tuple((parse_clock(a), parse_clock(b)) for a, b in value)
    elif key == "regime_switch":
        current = dict(data.get("regime_switch") or {})
        current.update({k: v for k, v in dict(value).items() if v is not None})
        data[key] = current
    elif key in ("calendar", "note"):
        return
    else:
        data[key] = value


def _apply_session(data: dict[str, Any], value: dict[str, Any]) -> None:
    if value.get("default"):
        data["session_open_et"] = parse_clock(value["default"][0])
        data["session_close_et"] = parse_clock(value["default"][1])
    if value.get("late_close_products"):
        data["late_close_et"] = parse_clock(value["late_close_products"][1])
    if value.get("late_close_products_list"):
        data["late_close_products"] = tuple(str(s).upper() for s in value["late_close_products_list"])
