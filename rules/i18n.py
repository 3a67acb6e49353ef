"""One translation mechanism for every user-facing string: Simplified Chinese first, English too.

Messages are looked up by key; `set_language` picks the language (``zh`` by default; the CLI
reads ``$DOORGATE_LANG`` or ``--lang``). Pure data, so every package may use it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from contextvars import ContextVar

_MESSAGES: dict[str, dict[str, str]] = {
    "allow": {"zh": "放行", "en": "allowed"},
    "deny": {"zh": "拒绝", "en": "denied"},
    "granted": {"zh": "已批准住户", "en": "approved occupant"},
    "granted_exit": {"zh": "放行出门", "en": "let out (exit)"},
    "unknown_credential": {"zh": "未登记的卡", "en": "unknown card"},
    "credential_revoked": {"zh": "卡已注销", "en": "card revoked"},
    "pending_approval": {"zh": "待派出所审核", "en": "pending approval"},
    "suspended": {"zh": "已暂停", "en": "suspended"},
    "moved_out": {"zh": "已搬离", "en": "moved out"},
    "tenancy_not_started": {"zh": "租期未开始", "en": "tenancy not started"},
    "tenancy_expired": {"zh": "租期已过", "en": "tenancy expired"},
    "col.time": {"zh": "时间", "en": "time"},
    "col.card": {"zh": "卡号", "en": "card"},
    "col.person": {"zh": "住户", "en": "person"},
    "col.unit": {"zh": "房间", "en": "unit"},
    "col.decision": {"zh": "结果", "en": "decision"},
    "col.reasons": {"zh": "原因", "en": "reasons"},
    "col.station": {"zh": "管理站收到", "en": "station received"},
    "col.gateway": {"zh": "网关", "en": "gateway"},
    "col.state": {"zh": "状态", "en": "state"},
    "col.id": {"zh": "编号", "en": "id"},
    "col.name": {"zh": "姓名", "en": "name"},
    "col.id_number": {"zh": "证件号", "en": "ID number"},
    "col.status": {"zh": "状态", "en": "status"},
    "col.tenancy": {"zh": "租期", "en": "tenancy"},
    "col.building": {"zh": "楼栋", "en": "building"},
    "col.floor": {"zh": "楼层", "en": "floor"},
    "col.room": {"zh": "房号", "en": "room"},
    "col.capacity": {"zh": "限住人数", "en": "capacity"},
    "col.approved": {"zh": "已批准", "en": "approved"},
    "col.pending": {"zh": "待审核", "en": "pending"},
    "col.kind": {"zh": "类型", "en": "kind"},
    "status.pending": {"zh": "待审核", "en": "pending"},
    "status.approved": {"zh": "已批准", "en": "approved"},
    "status.suspended": {"zh": "已暂停", "en": "suspended"},
    "status.moved_out": {"zh": "已搬离", "en": "moved out"},
    "demo.title": {
        "zh": "doorgate 演示：刷卡 → 网关判定 → 管理站",
        "en": "doorgate demo: card tap → gateway decision → station",
    },
    "demo.broker": {"zh": "MQTT 服务器", "en": "MQTT broker"},
    "demo.folder": {"zh": "演示楼栋数据目录", "en": "demo building folder"},
    "demo.waiting": {
        "zh": "等待管理站收齐全部事件…",
        "en": "waiting for the station to receive every event…",
    },
    "ok.unit_added": {"zh": "已添加房间 {id}", "en": "unit {id} added"},
    "ok.occupant_added": {
        "zh": "已登记住户 {name}（编号 {id}），待审核",
        "en": "occupant {name} enrolled (id {id}), pending approval",
    },
    "ok.approved": {"zh": "已批准 {name}（编号 {id}）", "en": "approved {name} (id {id})"},
    "ok.moved_out": {
        "zh": "{name}（编号 {id}）已搬离，卡片和人脸已注销",
        "en": "{name} (id {id}) moved out; cards and face templates cancelled",
    },
    "ok.card_added": {
        "zh": "已为住户 {occupant} 绑定卡 {masked}",
        "en": "card {masked} bound to occupant {occupant}",
    },
    "ok.config_valid": {"zh": "配置有效：{path}", "en": "configuration is valid: {path}"},
    "err.prefix": {"zh": "错误", "en": "error"},
    "err.station_approves": {
        "zh": '本楼的登记由管理站审批（station.approval = "station"）；没有管理站的楼栋请设为 "local"',
        "en": 'this building\'s enrolments are approved by the station (station.approval = "station");'
        ' set it to "local" for a building without a station',
    },
    "ops.backup": {"zh": "正在备份", "en": "backing up"},
    "ops.backed_up": {
        "zh": "已备份到 {path}（{mb} MB，数据库版本 {version}）",
        "en": "backed up to {path} ({mb} MB, schema {version})",
    },
    "ops.restored": {
        "zh": "已从备份恢复 {path}（数据库版本 {version}）",
        "en": "restored {path} (schema {version})",
    },
    "station.enrolments": {"zh": "待审批登记", "en": "enrolments awaiting approval"},
    "station.alerts": {"zh": "未确认告警", "en": "unacknowledged alerts"},
    "station.sent": {
        "zh": "已签名发送 {name} → {target}",
        "en": "signed and sent {name} → {target}",
    },
    "station.reply": {
        "zh": "网关回复：{code} {message}",
        "en": "gateway replied: {code} {message}",
    },
    "station.no_reply": {
        "zh": "{wait} 秒内网关未回复（离线时命令在服务器排队）",
        "en": "no reply within {wait} s (the command waits at the broker while the gateway is offline)",
    },
    "station.acked": {"zh": "已确认告警 {id}", "en": "alert {id} acknowledged"},
    "station.keygen": {
        "zh": "已生成管理站密钥：{private}（保密）和 {public}（复制到各网关）",
        "en": "station key written: {private} (keep secret) and {public} (copy to every gateway)",
    },
    "col.occupant": {"zh": "住户编号", "en": "occupant"},
    "col.received": {"zh": "收到时间", "en": "received"},
    "col.alert": {"zh": "告警", "en": "alert"},
    "station.title": {"zh": "管理站：实时事件", "en": "station: live events"},
    "station.gateways": {"zh": "网关状态", "en": "gateways"},
    "station.received": {
        "zh": "已收 {new} 条，重复 {dup} 条",
        "en": "received {new}, duplicates {dup}",
    },
    "state.online": {"zh": "在线", "en": "online"},
    "state.offline": {"zh": "离线", "en": "offline"},
    "tap.waiting": {
        "zh": "请在读卡器 {reader} 上刷卡（{timeout} 秒内）…",
        "en": "tap the card on reader {reader} (within {timeout} s)…",
    },
    "tap.timeout": {"zh": "{timeout} 秒内没有刷卡", "en": "no card within {timeout} s"},
}

_language = "zh"
# A per-request (per-task) language for the web pages: a portal page rendered in English
# must not switch the daemon's log and CLI messages, nor a page rendered at the same time.
_override: ContextVar[str | None] = ContextVar("doorgate_language", default=None)


@contextlib.contextmanager
def language(lang: str) -> Iterator[None]:
    """Messages in `lang` inside the block, for this task or thread only."""
    if lang not in {"zh", "en"}:
        raise ValueError("language must be zh or en")
    token = _override.set(lang)
    try:
        yield
    finally:
        _override.reset(token)


def current_language() -> str:
    """The language `t` answers in here."""
    return _override.get() or _language


def set_language(language: str) -> None:
    """Choose ``zh`` or ``en`` for every later message."""
    global _language  # noqa: PLW0603 - one process-wide UI language, like gettext's
    if language not in {"zh", "en"}:
        raise ValueError("language must be zh or en")
    _language = language


def t(key: str, **values: object) -> str:
    """The message for `key` in the current language, formatted with `values`.

    Unknown keys come back unchanged, so a reason code without a translation still shows.
    """
    entry = _MESSAGES.get(key)
    text = key if entry is None else entry.get(current_language(), entry["en"])
    return text.format(**values) if values else text


def add_messages(messages: dict[str, dict[str, str]]) -> None:
    """Add a module's messages to the one catalogue (each entry needs ``zh`` and ``en``)."""
    for key, entry in messages.items():
        if set(entry) != {"zh", "en"}:
            raise ValueError(f"message {key!r} needs exactly zh and en")
        _MESSAGES[key] = entry


def keys() -> set[str]:
    """Every message key (tests check each has both languages)."""
    return set(_MESSAGES)
