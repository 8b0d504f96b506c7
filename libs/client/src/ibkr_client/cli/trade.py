"""`ibkr check`, `place`, `confirm`, `cancel`, `modify`: orders, with each IBKR question asked of a person.

A question is answered yes only when the operator says so: at the prompt, or in advance by naming its
message id with `--confirm MESSAGE_ID` (repeatable). Without a terminal and without that, the order waits
and `ibkr confirm` answers it later (exit 6).
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Annotated, Any

import typer
from rich.text import Text

from ibkr_client.cli.base import OPTIONS, app, interactive, resolve_account, run, usage_error
from ibkr_client.cli.output import (
    EXIT_REFUSED,
    EXIT_UNANSWERED,
    err,
    fail_line,
    out,
    print_decision,
    print_json,
)
from ibkr_client.client import IbkrClient
from ibkr_client.sections import build_order, new_client_order_id
from ibkr_contract.orders import OrderRequest, OrderResult

JsonFlag = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]
MAX_QUESTION_ROUNDS = 10
REFUSED_STATUSES = frozenset({"rejected", "cancelled", "failed", "inactive", "declined"})

Side = Annotated[str, typer.Argument(help="BUY or SELL.", case_sensitive=False)]
Quantity = Annotated[str, typer.Argument(help="How many (a decimal above zero).")]
Instrument = Annotated[str, typer.Argument(help="A stock symbol (AAPL), or a conid (265598).")]
OrderTypeOption = Annotated[str, typer.Option("--type", "-t", help="MKT, LMT, STP or STP_LMT.")]
LimitOption = Annotated[str | None, typer.Option("--limit", help="Limit price (LMT, STP_LMT).")]
StopOption = Annotated[str | None, typer.Option("--stop", help="Stop price (STP, STP_LMT).")]
TifOption = Annotated[str, typer.Option("--tif", help="DAY, GTC or IOC.")]
ClientOrderIdOption = Annotated[str | None, typer.Option("--client-order-id", help="Idempotency key (default: new).")]


def _decimal(value: str | None, name: str) -> Decimal | None:
    if value is None:
        return None
    try:
        number = Decimal(value)
    except InvalidOperation:
        raise usage_error(f"{name}: {value!r} is not a number") from None
    if not number.is_finite():
        raise usage_error(f"{name}: {value!r} is not a number")
    return number


def _order(ib: IbkrClient, account_id: str, side: str, quantity: str, instrument: str, order_type: str,
           limit: str | None, stop: str | None, tif: str, client_order_id: str | None) -> OrderRequest:
    fields: dict[str, Any] = {
        "account_id": account_id, "user_id": OPTIONS.operator, "side": side.upper(),
        "quantity": _decimal(quantity, "quantity"), "order_type": order_type.upper(), "tif": tif.upper(),
        "limit_price": _decimal(limit, "--limit"), "stop_price": _decimal(stop, "--stop"),
        "client_order_id": client_order_id or new_client_order_id("ibkr"),
    }
    if instrument.isdigit():
        fields["conid"] = int(instrument)
    else:
        fields["symbol"] = instrument.upper()
    return build_order(ib, fields)


@app.command()
def check(side: Side, quantity: Quantity, instrument: Instrument, order_type: OrderTypeOption = "MKT",
          limit: LimitOption = None, stop: StopOption = None, tif: TifOption = "DAY",
          as_json: JsonFlag = False) -> None:
    """What compliance would decide for this order, with each reason and its severity; nothing is sent.

    Exits 5 when the decision is block.
    """

    async def work(ib: IbkrClient) -> int:
        order = _order(ib, await resolve_account(ib), side, quantity, instrument, order_type, limit, stop, tif, None)
        decision = await ib.orders.check(order)
        if as_json:
            print_json(decision)
        else:
            print_decision(decision)
        return EXIT_REFUSED if decision.decision == "block" else 0

    run(work)


@app.command()
def place(
    side: Side, quantity: Quantity, instrument: Instrument, order_type: OrderTypeOption = "MKT",
    limit: LimitOption = None, stop: StopOption = None, tif: TifOption = "DAY",
    client_order_id: ClientOrderIdOption = None,
    confirm: Annotated[list[str] | None, typer.Option(
        "--confirm", help="Accept IBKR's question with this message id in advance (repeatable); any other question "
        "is asked at the prompt.")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Place an order: the decision and each reason, then each IBKR question (asked, or accepted by --confirm).

    Exits 5 when refused or a question is declined, 6 when a question is left unanswered.
    """

    async def work(ib: IbkrClient) -> int:
        order = _order(ib, await resolve_account(ib), side, quantity, instrument, order_type, limit, stop, tif,
                       client_order_id)
        result = await ib.orders.submit(order)
        if not as_json:
            print_decision(result)
        return await follow_questions(ib, result, set(confirm or []), as_json)

    run(work)


async def follow_questions(ib: IbkrClient, result: OrderResult, accepted: set[str], as_json: bool) -> int:
    """Answer IBKR's questions one round at a time; print the outcome; the exit code."""
    for _ in range(MAX_QUESTION_ROUNDS):
        question = result.confirmation
        if result.status != "confirmation_required" or question is None:
            break
        ids = list(question.message_ids)
        if not as_json:
            out.print(Text("IBKR asks before it accepts the order:", style="bold yellow"))
            for index, message in enumerate(question.messages or ["(no text)"]):
                out.print(f"  [{ids[index] if index < len(ids) else '?'}] {message}")
        if ids and set(ids) <= accepted:
            answer = True
            if not as_json:
                out.print(f"  accepted in advance by {OPTIONS.operator} (--confirm {' '.join(ids)})")
        elif interactive() and not as_json:
            answer = typer.confirm(f"Accept {'these questions' if len(ids) > 1 else 'this'} and place the order?",
                                   default=False)
        else:
            missing = ", ".join(i for i in ids if i not in accepted) or "(no id)"
            if as_json:
                print_json(result)
            fail_line(f"IBKR asks a question ({missing}) nobody answered: order {result.client_order_id} waits; "
                      f"answer with `ibkr confirm {result.client_order_id} {question.reply_id}` (--no declines); "
                      f"`--confirm {missing.split(', ')[0]}` accepts it in advance next time")
            return EXIT_UNANSWERED
        result = await ib.orders.confirm(result.client_order_id, question.reply_id, answer,
                                         answered_by=OPTIONS.operator)
        if not answer:
            break
    return report(result, as_json)


def report(result: OrderResult, as_json: bool) -> int:
    """The order's outcome (status, order id, message); exit 5 when it was refused or declined."""
    if as_json:
        print_json(result)
    else:
        style = "bold red" if result.status in REFUSED_STATUSES else "green"
        line = Text("status ") + Text(result.status, style=style)
        line.append(f"  order {result.order_id or '-'}  client order id {result.client_order_id}")
        out.print(line)
        if result.message:
            out.print(f"  {result.message}")
    if result.status in REFUSED_STATUSES:
        if not as_json:
            err.print(Text("ibkr: ", style="bold red") + Text(f"order {result.status}: {result.message or ''}".strip()))
        return EXIT_REFUSED
    return 0


@app.command("confirm")
def confirm_order(
    client_order_id: Annotated[str, typer.Argument(help="The order's client order id.")],
    reply_id: Annotated[str, typer.Argument(help="The question's reply id (from `ibkr place`).")],
    no: Annotated[bool, typer.Option("--no", help="Decline the question (the order is not placed).")] = False,
    as_json: JsonFlag = False,
) -> None:
    """Answer IBKR's question about an order waiting for confirmation (recorded as your answer)."""

    async def work(ib: IbkrClient) -> int:
        result = await ib.orders.confirm(client_order_id, reply_id, not no, answered_by=OPTIONS.operator)
        if no:
            return report(result, as_json)
        return await follow_questions(ib, result, set(), as_json)

    run(work)


@app.command()
def cancel(
    order_id: Annotated[str | None, typer.Argument(help="IBKR's order id.")] = None,
    client_order_id: ClientOrderIdOption = None,
    as_json: JsonFlag = False,
) -> None:
    """Cancel an order, by IBKR's order id or --client-order-id."""
    if not order_id and not client_order_id:
        raise usage_error("give the order id, or --client-order-id")

    async def work(ib: IbkrClient) -> None:
        result = await ib.orders.cancel(await resolve_account(ib), order_id, client_order_id=client_order_id)
        if as_json:
            print_json(result)
        else:
            out.print(f"order {result.order_id or order_id or client_order_id}: {result.status}"
                      + (f" ({result.message})" if result.message else ""))

    run(work)


@app.command()
def modify(
    order_id: Annotated[str, typer.Argument(help="IBKR's order id.")],
    quantity: Annotated[str | None, typer.Option("--quantity", help="New quantity.")] = None,
    limit: LimitOption = None, stop: StopOption = None,
    tif: Annotated[str | None, typer.Option("--tif", help="DAY, GTC or IOC.")] = None,
    confirm: Annotated[list[str] | None, typer.Option("--confirm", help="Accept this question id in advance.")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Change an open order's quantity, prices or time in force (compliance checks it again)."""
    if quantity is None and limit is None and stop is None and tif is None:
        raise usage_error("give what to change: --quantity, --limit, --stop or --tif")

    async def work(ib: IbkrClient) -> int:
        result = await ib.orders.modify(
            await resolve_account(ib), order_id, quantity=_decimal(quantity, "--quantity"),
            limit_price=_decimal(limit, "--limit"), stop_price=_decimal(stop, "--stop"),
            tif=tif.upper() if tif else None,  # type: ignore[arg-type]
            user_id=OPTIONS.operator)
        if not as_json:
            print_decision(result)
        return await follow_questions(ib, result, set(confirm or []), as_json)

    run(work)
