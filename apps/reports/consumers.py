"""Live spike alerts for the report pages: supervisors, admins and marketing."""
from channels.generic.websocket import AsyncJsonWebsocketConsumer

from apps.accounts.models import Role
from apps.accounts.permissions import user_has_role
from apps.core.sockets import JsonFrameGuard

from .realtime import ALERTS_GROUP

ALERT_ROLES = (Role.SUPERVISOR, Role.ADMIN, Role.MARKETING)


class ReportsAlertConsumer(JsonFrameGuard, AsyncJsonWebsocketConsumer):
    async def connect(self):
        user = self.scope.get("user")
        if user is None or not user_has_role(user, *ALERT_ROLES):
            await self.close(code=4403)
            return
        await self.channel_layer.group_add(ALERTS_GROUP, self.channel_name)
        await self.accept()

    async def disconnect(self, code):
        await self.channel_layer.group_discard(ALERTS_GROUP, self.channel_name)

    async def reports_alert(self, event):
        await self.send_json({k: v for k, v in event.items() if k != "type"})
