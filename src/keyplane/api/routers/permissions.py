from __future__ import annotations

from fastapi import APIRouter

from keyplane.api.schemas import PermissionList, PermissionOut
from keyplane.domain.permissions import catalog

router = APIRouter(tags=["permissions"])

_CATALOG = PermissionList(data=[PermissionOut.model_validate(p) for p in catalog()])


@router.get("/v1/permissions", response_model=PermissionList)
async def list_permissions() -> PermissionList:
    """The permission catalog with dependencies (public)."""
    return _CATALOG
