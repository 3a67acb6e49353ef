"""The portal's messages (Simplified Chinese first, English), added to `rules.i18n`."""

from __future__ import annotations

from rules.i18n import add_messages, keys

_PAIRS: dict[str, tuple[str, str]] = {
    "portal.title": ("房东管理平台", "Landlord portal"),
    "portal.sign_in": ("登录", "Sign in"),
    "portal.sign_out": ("退出", "Sign out"),
    "portal.user": ("用户名", "User name"),
    "portal.password": ("密码", "Password"),
    "portal.bad_login": ("用户名或密码错误", "Wrong user name or password"),
    "portal.rate_limited": (
        "登录失败次数过多，请 {minutes} 分钟后再试",
        "Too many failed sign-ins; try again in {minutes} minutes",
    ),
    "portal.csrf": ("表单已过期，请刷新页面后重试", "The form expired; reload the page and retry"),
    "portal.forbidden": ("无权访问", "Not allowed"),
    "portal.not_found": ("找不到该页面", "Page not found"),
    "portal.units": ("我的房间", "My units"),
    "portal.all_units": ("全部房间", "All units"),
    "portal.no_units": ("没有可管理的房间", "No units to manage"),
    "portal.unit": ("房间 {id}", "Unit {id}"),
    "portal.tenants": ("住户", "Tenants"),
    "portal.no_tenants": ("暂无住户", "No tenants"),
    "portal.enrol": ("登记新住户", "Enrol a tenant"),
    "portal.id_number": ("身份证号", "ID number"),
    "portal.valid_from": ("租期开始", "Tenancy from"),
    "portal.valid_to": ("租期结束", "Tenancy to"),
    "portal.open_ended": ("长期", "open-ended"),
    "portal.submit_enrol": ("提交审核", "Submit for approval"),
    "portal.enrolled": (
        "已登记 {name}，等待管理站审核",
        "{name} enrolled, waiting for the station's approval",
    ),
    "portal.tap": ("绑定门卡", "Bind a card"),
    "portal.tap_help": (
        "选择读卡器，点击按钮后 {timeout} 秒内在读卡器上刷卡",
        "Choose the reader, press the button, then tap the card within {timeout} s",
    ),
    "portal.tap_now": ("现在刷卡", "Tap the card now"),
    "portal.reader": ("读卡器", "Reader"),
    "portal.card_bound": ("已绑定门卡 {masked}", "Card {masked} bound"),
    "portal.no_card": ("{timeout} 秒内没有刷卡", "No card within {timeout} s"),
    "portal.cards": ("门卡", "Cards"),
    "portal.move_out": ("办理退租", "Move out"),
    "portal.move_out_confirm": (
        "确定为该住户办理退租？门卡和人脸将立即注销。",
        "Move this tenant out? Cards and face templates are cancelled at once.",
    ),
    "portal.moved_out": (
        "{name} 已退租，门卡和人脸已注销", "{name} moved out; cards and faces cancelled"
    ),
    "portal.renew": ("续租", "Renew"),
    "portal.renewed": ("{name} 的租期已延至 {to}", "{name}'s tenancy now ends {to}"),
    "portal.entries": ("最近进出记录", "Recent entries"),
    "portal.no_entries": ("暂无进出记录", "No entries yet"),
    "portal.audit": ("操作记录", "Audit log"),
    "portal.actions": ("操作", "Actions"),
    "portal.declare": ("扫码自助登记", "Self-declaration QR code"),
    "portal.declare_print": ("打印此页贴在房门上", "Print this page and put it on the door"),
    "portal.declare_scan": (
        "租客请用手机连接楼内网络后打开以下地址自助登记：",
        "Tenants: on the building's network, open this address to declare themselves:",
    ),
    "portal.declare_title": ("{unit} 住户自助登记", "Self-declaration for {unit}"),
    "portal.declared": (
        "已提交，请联系房东确认并绑定门卡",
        "Submitted: ask your landlord to confirm and bind your card",
    ),
    "portal.error": ("操作未完成：{message}", "Not done: {message}"),
    "portal.legend": ("图例", "Legend"),
    "portal.role.landlord": ("房东", "landlord"),
    "portal.role.station_staff": ("管理站工作人员", "station staff"),
    "portal.role.station_admin": ("管理站管理员", "station administrator"),
    "portal.lang": ("English", "中文"),
    "portal.user_added": ("已添加用户 {name}（{role}）", "user {name} added ({role})"),
    "portal.serving": ("房东平台：{url}", "landlord portal: {url}"),
    "audit.enrol": ("登记", "enrolment"),
    "audit.declare": ("自助登记", "self-declaration"),
    "audit.card": ("绑卡", "card bound"),
    "audit.move_out": ("退租", "move-out"),
    "audit.renew": ("续租", "renewal"),
    "audit.approve": ("批准", "approval"),
    "audit.unlock": ("远程开门", "remote unlock"),
    "col.when": ("时间", "when"),
    "col.who": ("操作人", "who"),
    "col.what": ("操作", "what"),
    "col.door": ("门", "door"),
    "col.direction": ("方向", "direction"),
    "dir.in": ("进", "in"),
    "dir.out": ("出", "out"),
    # ID card and cards
    "portal.read_idcard": ("读取身份证", "Read the ID card"),
    "portal.read_idcard_help": (
        "在读卡器上放身份证，姓名和身份证号自动填入（{timeout} 秒内）",
        "Put the ID card on the reader: name and ID number fill in (within {timeout} s)",
    ),
    "portal.idcard_read": (
        "已读取身份证：{name}，请核对后提交", "ID card read: {name}; check and submit"
    ),
    "portal.not_idcard": (
        "刷的不是身份证，请放身份证", "That was not a resident ID card; use the ID card"
    ),
    "portal.no_idcard": ("{timeout} 秒内没有读到身份证", "No ID card within {timeout} s"),
    "portal.idcard_bound": (
        "已核验身份证 {masked}，可凭身份证开门", "ID card {masked} verified: it opens the door"
    ),
    "portal.idcard_other": (
        "这张身份证（{masked}）不是该住户的", "This ID card ({masked}) is not this tenant's"
    ),
    # camera
    "portal.camera": ("摄像头", "Camera"),
    "portal.look": ("看摄像头", "Look at the camera"),
    "portal.look_help": (
        "请住户正对摄像头站好，再点按钮", "Have the tenant face the camera, then press"
    ),
    "portal.face_ok": ("人脸合格（质量 {quality}）", "Face usable (quality {quality})"),
    "portal.face_bad": ("人脸不合格：{reason}", "Face not usable: {reason}"),
    "portal.use_face": ("使用这张人脸", "Use this face"),
    "portal.retry_face": ("重拍", "Try again"),
    "portal.face_saved": (
        "已为 {name} 保存人脸模板（共 {count} 个）",
        "Face template saved for {name} ({count} in all)",
    ),
    "portal.capture_gone": (
        "拍摄结果已过期，请重新拍摄", "The capture expired; look at the camera again"
    ),
    "portal.face.unreadable": ("图片无法读取", "the picture is unreadable"),
    "portal.face.no_face": ("没有找到人脸", "no face found"),
    "portal.face.several_faces": ("画面中不止一个人", "more than one face"),
    "portal.face.too_small": ("人脸太小，请靠近", "face too small; step closer"),
    "portal.face.too_blurry": ("画面太模糊，请站稳", "too blurry; hold still"),
    "portal.face.turned_away": ("脸没有正对镜头", "face not turned to the camera"),
    "portal.face.no_frame": ("摄像头没有画面", "the camera shows no picture"),
    "portal.face.timeout": ("摄像头没有响应", "the camera did not answer"),
    "portal.face.unavailable": ("摄像头不可用", "the camera is unavailable"),
    "portal.faces": ("人脸", "Faces"),
    # wrong matches
    "portal.not_this_person": ("不是本人", "Not this person"),
    "portal.wrong_help": (
        "上传被误认的那个人的照片，以后不会再认成该住户",
        "Upload a photo of the person who was wrongly let in as this tenant",
    ),
    "portal.photo": ("照片", "Photo"),
    "portal.marked_wrong": (
        "已记录：照片中的人不再被认作 {name}", "Recorded: that face no longer counts as {name}"
    ),
    "portal.photo_bad": ("照片不能用：{reason}", "Photo not usable: {reason}"),
    "portal.photo_missing": ("请选择一张照片", "Choose a photo"),
    "portal.photo_too_big": ("照片太大（最大 {mb} MB）", "Photo too large (at most {mb} MB)"),
    # self-declarations
    "portal.declared_by_tenant": ("住户自助登记，待确认", "Declared by the tenant: confirm"),
    "portal.confirm": ("确认", "Confirm"),
    "portal.reject": ("驳回", "Reject"),
    "portal.reject_confirm": (
        "确定驳回该自助登记？该登记将被删除。", "Reject this declaration? It will be deleted."
    ),
    "portal.confirmed": (
        "已确认 {name} 的自助登记，请为其绑定门卡",
        "{name}'s declaration confirmed: now bind their card",
    ),
    "portal.rejected": ("已驳回 {name} 的自助登记", "{name}'s declaration rejected"),
    "portal.not_declared": (
        "该住户不是待确认的自助登记", "This tenant is not an unconfirmed self-declaration"
    ),
    "portal.qr_alt": ("自助登记二维码", "self-declaration QR code"),
    # visitor passes
    "portal.passes": ("访客通行证", "Visitor passes"),
    "portal.no_passes": ("暂无访客通行证", "No visitor passes"),
    "portal.issue_pass": ("发放访客通行证", "Issue a visitor pass"),
    "portal.visitor_name": ("访客姓名", "Visitor's name"),
    "portal.visitor_id": ("访客身份证号", "Visitor's ID number"),
    "portal.pass_from": ("开始时间", "From"),
    "portal.pass_to": ("结束时间", "Until"),
    "portal.pass_uses": ("可进门次数", "Entries allowed"),
    "portal.pass_uses_help": ("留空为不限次数", "leave empty for no limit"),
    "portal.unlimited": ("不限", "unlimited"),
    "portal.pass_issued": (
        "已为 {name} 发放访客通行证（{from_} ~ {to}）",
        "Visitor pass issued to {name} ({from_} ~ {to})",
    ),
    "portal.revoke": ("作废", "Revoke"),
    "portal.pass_revoked": ("通行证 {id} 已作废", "Pass {id} revoked"),
    "portal.pass_state.active": ("有效", "active"),
    "portal.pass_state.revoked": ("已作废", "revoked"),
    "portal.pass_state.expired": ("已过期", "expired"),
    "portal.pass_state.upcoming": ("未开始", "not started"),
    "portal.pass_state.used_up": ("次数已用完", "used up"),
    "portal.bad_datetime": ("时间格式不对", "Not a valid date and time"),
    "portal.bad_uses": ("次数须为正整数", "Entries must be a positive whole number"),
    "col.uses": ("已用次数", "used"),
    "col.issued_by": ("发放人", "issued by"),
    # alerts
    "portal.alerts": ("最近告警", "Recent alerts"),
    "portal.no_alerts": ("暂无告警", "No alerts"),
    "portal.alert_state.raised": ("发生", "raised"),
    "portal.alert_state.cleared": ("解除", "cleared"),
    "portal.alert.overcrowding": ("超员居住", "overcrowding"),
    "portal.alert.building_over_capacity": ("楼栋超员", "building over capacity"),
    "portal.alert.stranger_recurring": ("陌生人多次出现", "recurring stranger"),
    "portal.alert.vacancy": ("长期未归", "not seen for a long time"),
    "portal.alert.tailgating": ("尾随进入", "tailgating"),
    "portal.alert.door_forced": ("门被强行打开", "door forced open"),
    "portal.alert.door_held": ("门长时间未关", "door held open"),
    "portal.alert.repeated_denial": ("多次被拒", "repeated denials"),
    "portal.alert.tenancy_expiring": ("租期将到", "tenancy expiring"),
    "portal.alert.approval_overdue": ("审批超时", "approval overdue"),
    "portal.alert.reader_offline": ("读卡器离线", "reader offline"),
    "portal.alert.camera_offline": ("摄像头离线", "camera offline"),
    "portal.colour.red": (
        "超员、疑似未登记居住或门被强开", "overcrowded, unregistered resident or door forced"
    ),
    "portal.colour.yellow": (
        "待审核、租期将到或一般告警", "awaiting approval, tenancy ending or minor alert"
    ),
    "portal.colour.green": ("正常", "in order"),
    "portal.colour.grey": ("无已批准住户", "no approved tenants"),
    "col.kind_of": ("类别", "kind"),
    "col.about": ("对象", "about"),
    "kind.ic": ("门卡", "card"),
    "kind.idcard": ("身份证", "ID card"),
    "kind.face": ("人脸", "face"),
    # audit actions
    "audit.idcard": ("核验身份证", "ID card verified"),
    "audit.confirm": ("确认自助登记", "declaration confirmed"),
    "audit.reject_declaration": ("驳回自助登记", "declaration rejected"),
    "audit.face": ("采集人脸", "face enrolled"),
    "audit.face_wrong": ("标记误识别", "wrong face match marked"),
    "audit.pass_issue": ("发放访客通行证", "visitor pass issued"),
    "audit.pass_revoke": ("作废访客通行证", "visitor pass revoked"),
}

# Reason codes of the rules that the rules' own catalogue may not translate yet: added only
# when missing, so the rules' wording wins once it has one.
_REASONS: dict[str, tuple[str, str]] = {
    "visitor_pass": ("访客通行证", "visitor pass"),
    "visitor_pass_not_started": ("通行证未到时间", "visitor pass not yet valid"),
    "visitor_pass_expired": ("通行证已过期", "visitor pass expired"),
    "visitor_pass_used_up": ("通行证次数已用完", "visitor pass used up"),
    "visitor_pass_revoked": ("通行证已作废", "visitor pass revoked"),
    "outside_schedule": ("不在开放时间", "outside opening hours"),
    "anti_passback": ("防潜回", "anti-passback"),
}

add_messages({key: {"zh": zh, "en": en} for key, (zh, en) in _PAIRS.items()})
add_messages(
    {key: {"zh": zh, "en": en} for key, (zh, en) in _REASONS.items() if key not in keys()}
)
