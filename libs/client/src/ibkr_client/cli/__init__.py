"""`ibkr`, the operator's command (typer + rich), on ibkr_client only. Entry point: `ibkr_client.cli.app:main`."""
