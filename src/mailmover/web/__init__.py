"""The web app: FastAPI + Jinja2 templates + htmx, thin over ``mailmover.service``.

``app.create_app(WebConfig)`` builds it. A page module holds one ``APIRouter``
included in ``create_app``; its routes take ``auth.current_user`` (or
``auth.require_admin``) and ``state.web_state``, call one service function and
render a template that extends ``base.html`` (blocks ``title`` and ``content``;
every form holds ``{{ csrf_field() }}``).
"""
