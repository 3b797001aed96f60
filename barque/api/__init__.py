"""The Docker Engine API over Barque's engine (`barque serve`): aiohttp handlers that parse
requests and shape answers; every operation is barque.engine's, as the CLI's are."""
