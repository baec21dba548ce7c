"""Your own API protected by keyplane keys (README: "Protect your own API"); tests run it."""

from fastapi import Depends, FastAPI

from keyplane.verify import Identity, Keyplane

keyplane = Keyplane.from_env()  # in-process: the database and Redis of `keyplane serve`
app = FastAPI()
keyplane.install(app)  # keyplane's JSON errors; starts and stops with the app


@app.get("/invoices")
async def invoices(key: Identity = Depends(keyplane.require("invoices:read"))) -> dict[str, object]:
    return {"key_id": key.key_id, "project_id": key.project_id, "mode": key.mode}
