"""Place an order on `make run`'s stack and follow it until it is filled (cpsim's paper account)."""
import asyncio

from ibkr_client import IbkrClient


async def main(account: str = "DU1234567", user: str = "example") -> None:
    async with IbkrClient() as ib:  # no URL: finds the stack from .var/stack.json
        await ib.compliance.acknowledge(user, ["options_risk", "day_trading_risk"])
        async with ib.events(types="orders", account=account, idle_timeout=30) as events:
            order = await ib.orders.submit(account_id=account, user_id=user, symbol="AAPL", side="BUY",
                                           quantity=10, order_type="MKT")
            print("decision", order.decision, "status", order.status, "order", order.order_id)
            async for event in events:
                print(event.type, event.payload.get("order", {}).get("status", ""))
                if event.type in ("orders.filled", "orders.cancelled", "orders.rejected"):
                    break

asyncio.run(main())
