"""The dashboard's messages (Simplified Chinese first, English), added to `rules.i18n`.

The unit colour reasons (``reason.*``) are shared with the portal: `sync.webui` registers them.
"""

from __future__ import annotations

from rules.i18n import add_messages
from sync import webui  # noqa: F401 - registers the unit colour reasons (reason.*)

_PAIRS: dict[str, tuple[str, str]] = {
    "web.title": ("出租屋管理站", "Rental housing station"),
    "web.sign_in": ("登录", "Sign in"),
    "web.sign_out": ("退出", "Sign out"),
    "web.user": ("用户名", "User name"),
    "web.password": ("密码", "Password"),
    "web.bad_login": ("用户名或密码错误", "Wrong user name or password"),
    "web.rate_limited": (
        "登录失败次数过多，请 {minutes} 分钟后再试",
        "Too many failed sign-ins; try again in {minutes} minutes",
    ),
    "web.csrf": ("表单已过期，请刷新页面后重试", "The form expired; reload the page and retry"),
    "web.forbidden": ("无权访问", "Not allowed"),
    "web.not_found": ("找不到该页面", "Page not found"),
    "web.error": ("操作未完成：{message}", "Not done: {message}"),
    "web.lang": ("English", "中文"),
    "web.role.station_staff": ("管理站工作人员", "station staff"),
    "web.role.station_admin": ("管理站管理员", "station administrator"),
    "web.user_added": ("已添加用户 {name}（{role}）", "user {name} added ({role})"),
    "web.legend": ("图例", "Legend"),
    "web.legend_red": (
        "超员、疑似未登记居住或门被强开", "overcrowded, unregistered or door forced"
    ),
    "web.legend_yellow": (
        "待审批、租期将到或一般告警", "awaiting approval, expiring or minor alert"
    ),
    "web.legend_green": ("正常", "in order"),
    "web.legend_grey": ("无登记", "nobody registered"),
    "web.when": ("时间", "when"),
    "web.who": ("操作人", "who"),
    "web.what": ("操作", "what"),
    "web.target": ("对象", "target"),
    "web.detail": ("详情", "detail"),
    "audit.approve": ("批准", "approval"),
    "audit.unlock": ("远程开门", "remote unlock"),
    "web.buildings": ("楼栋", "Buildings"),
    "web.no_buildings": ("尚未收到任何网关的数据", "Nothing received from any gateway yet"),
    "web.building": ("楼栋 {name}", "Building {name}"),
    "web.floor": ("{floor} 层", "floor {floor}"),
    "web.floor_unknown": ("楼层未知", "floor unknown"),
    "web.registered": ("登记", "registered"),
    "web.capacity": ("限住", "capacity"),
    "web.inside": ("今晚在内", "inside tonight"),
    "web.capacity_unknown": (
        "网关尚未上报该房间的限住人数", "the gateway has not reported this unit's capacity yet"
    ),
    "web.units_summary": ("{n} 户，红 {red}，黄 {yellow}", "{n} units, {red} red, {yellow} yellow"),
    "reason.alert": ("未确认告警：{n}", "unacknowledged alert: {n}"),
    "web.alerts": ("实时告警", "Live alerts"),
    "web.no_alerts": ("没有未确认的告警", "No unacknowledged alerts"),
    "web.ack": ("确认", "Acknowledge"),
    "web.acked": ("已确认告警", "Alert acknowledged"),
    "web.approvals": ("待审批登记", "Approval queue"),
    "web.no_approvals": ("没有待审批的登记", "Nothing waiting for approval"),
    "web.approve": ("批准", "Approve"),
    "web.reject": ("驳回", "Reject"),
    "web.reason": ("驳回原因", "Reason"),
    "web.approved": (
        "已批准 {occupant}，网关回复 {code}", "{occupant} approved; gateway replied {code}"
    ),
    "web.rejected": (
        "已驳回 {occupant}，网关回复 {code}", "{occupant} rejected; gateway replied {code}"
    ),
    "web.no_reply": (
        "网关未回复（离线时命令在服务器排队）",
        "no reply from the gateway (the command waits at the broker while it is offline)",
    ),
    "web.no_commander": (
        "本看板未配置签名密钥，不能发送命令", "no signing key configured: commands disabled"
    ),
    "web.search": ("搜索", "Search"),
    "web.search_hint": ("房间号、脱敏证件号或姓名", "unit, masked ID number or name"),
    "web.results": ("搜索结果", "Results"),
    "web.entries_hour": ("近 24 小时每小时进入人次", "Entries per hour, last 24 hours"),
    "web.occupancy": ("近 30 天每日在住人数", "Occupancy per day, last 30 days"),
    "web.events": ("最近事件", "Recent events"),
    "web.evidence": ("证据事件", "evidence events"),
    "web.unlock": ("远程开门", "Remote unlock"),
    "web.unlocked": ("开门命令已发送，网关回复 {code}", "unlock sent; gateway replied {code}"),
    "web.door": ("门", "door"),
    "web.enrolments": ("登记记录", "Enrolments"),
    "web.unit": ("房间 {unit}", "Unit {unit}"),
    "web.serving": ("管理站看板：{url}", "station dashboard: {url}"),
    "web.status.rejected": ("已驳回", "rejected"),
    "status.withdrawn": ("已撤回", "withdrawn"),
    "withdrawn.rejected_by_landlord": (
        "房东驳回了自助登记", "the landlord rejected the declaration"
    ),
    "withdrawn.moved_out": ("审批前已退租", "moved out before approval"),
    "web.audit": ("操作记录", "Audit log"),
    "audit.ack": ("确认告警", "alert acknowledged"),
    "audit.reject": ("驳回", "rejection"),
    "alert.door_forced": ("门被强行打开", "door forced open"),
    "alert.door_held": ("门长时间未关", "door held open"),
    "alert.overcrowding": ("超员居住", "overcrowding"),
    "alert.reader_offline": ("读卡器离线", "reader offline"),
    "alert.camera_offline": ("摄像头离线", "camera offline"),
    "alert.tailgating": ("尾随进入", "tailgating"),
    "alert.vacancy": ("长期未归", "vacancy"),
    "alert.stranger_recurring": ("陌生人多次出现", "recurring stranger"),
    "alert.building_over_capacity": ("楼栋超员", "building over capacity"),
    "alert.repeated_denial": ("多次被拒", "repeated denials"),
    "alert.tenancy_expiring": ("租期将到", "tenancy expiring"),
    "alert.approval_overdue": ("审批超时", "approval overdue"),
}

add_messages({key: {"zh": zh, "en": en} for key, (zh, en) in _PAIRS.items()})
