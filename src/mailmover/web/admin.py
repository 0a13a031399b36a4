"""Administration: accounts and their roles, and the audit log."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from starlette.responses import RedirectResponse, Response

from mailmover.service import access, accounts, audit, health
from mailmover.service.accounts import AccountError
from mailmover.service.jobs import NotFound
from mailmover.web.auth import AdminUser, State
from mailmover.web.state import render

router = APIRouter(prefix="/admin")


def _users_page(
    request: Request, web: State, error: str | None = None, status_code: int = 200, **form: str
) -> Response:
    context = {
        "accounts": accounts.list_accounts(web.store),
        "roles": accounts.ROLES,
        "error": error,
        "form": form,
        "done": request.query_params.get("done"),
    }
    return render(request, "admin_users.html", context, status_code=status_code)


@router.get("/users")
def users(request: Request, web: State, _admin: AdminUser) -> Response:
    return _users_page(request, web)


@router.post("/users")
def create_user(
    request: Request,
    web: State,
    admin: AdminUser,
    email: Annotated[str, Form()] = "",
    password: Annotated[str, Form()] = "",
    role: Annotated[str, Form()] = accounts.USER,
) -> Response:
    try:
        accounts.create_account(web.store, email, password, role, actor=admin)
    except AccountError as exc:  # the form again, with what was typed except the password
        return _users_page(request, web, exc.message, 400, email=email.strip(), role=role)
    return RedirectResponse("/admin/users?done=created", status_code=303)


@router.post("/users/{account_id}/role")
def change_role(
    request: Request,
    web: State,
    admin: AdminUser,
    account_id: int,
    role: Annotated[str, Form()],
) -> Response:
    try:
        accounts.set_role(web.store, admin, account_id, role)
    except AccountError as exc:
        return _users_page(request, web, exc.message, 400)
    return RedirectResponse("/admin/users?done=role", status_code=303)


@router.post("/users/{account_id}/active")
def change_active(
    request: Request,
    web: State,
    admin: AdminUser,
    account_id: int,
    active: Annotated[bool, Form()],
) -> Response:
    try:
        accounts.set_active(web.store, admin, account_id, active)
    except AccountError as exc:
        return _users_page(request, web, exc.message, 400)
    return RedirectResponse("/admin/users?done=saved", status_code=303)


@router.get("/users/{account_id}")
def user_page(request: Request, web: State, _admin: AdminUser, account_id: int) -> Response:
    return _user_page(request, web, account_id)


def _user_page(request: Request, web: State, account_id: int, error: str | None = None) -> Response:
    account = accounts.get_account(web.store, account_id)
    if account is None:
        raise NotFound(f"no account with id {account_id}")
    context = {
        "account": account,
        "roles": accounts.ROLES,
        "transfers": access.visible_jobs(web.store, account) if not account.is_admin else [],
        "entries": audit.entries(web.store, 50, actor_id=account.id),
        "error": error,
        "done": request.query_params.get("done"),
    }
    return render(request, "admin_user.html", context, status_code=400 if error else 200)


@router.post("/users/{account_id}/password")
def change_password(
    request: Request,
    web: State,
    admin: AdminUser,
    account_id: int,
    password: Annotated[str, Form()] = "",
) -> Response:
    try:
        accounts.set_password(web.store, admin, account_id, password)
    except AccountError as exc:
        return _user_page(request, web, account_id, exc.message)
    return RedirectResponse(f"/admin/users/{account_id}?done=password", status_code=303)


@router.get("/audit")
def audit_log(request: Request, web: State, _admin: AdminUser) -> Response:
    return render(request, "admin_audit.html", {"entries": audit.entries(web.store, 500)})


@router.get("/system")
def system(request: Request, web: State, _admin: AdminUser) -> Response:
    context = {
        "states": health.mailbox_states(web.store),
        "leases": health.worker_leases(web.store),
        "servers": health.servers_in_use(web.store),
        "runner": web.runner.health() if web.runner is not None else None,
    }
    return render(request, "admin_system.html", context)
