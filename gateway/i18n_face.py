"""Messages of the face commands, added to the one catalogue of `rules.i18n` at import."""

from __future__ import annotations

from rules.i18n import add_messages, t

FACE_MESSAGES: dict[str, dict[str, str]] = {
    "face.reject.unreadable": {"zh": "{file}：无法读取图片", "en": "{file}: not a readable image"},
    "face.reject.no_face": {"zh": "{file}：没有找到人脸", "en": "{file}: no face found"},
    "face.reject.several_faces": {
        "zh": "{file}：有 {detail} 张人脸，请每张照片只拍一个人",
        "en": "{file}: {detail} faces; use photos with exactly one person",
    },
    "face.reject.too_small": {
        "zh": "{file}：人脸太小（{detail}），请靠近拍摄",
        "en": "{file}: face too small ({detail}); take it closer",
    },
    "face.reject.too_blurry": {
        "zh": "{file}：照片太模糊（清晰度 {detail}）",
        "en": "{file}: photo too blurry (sharpness {detail})",
    },
    "face.reject.turned_away": {
        "zh": "{file}：脸没有正对镜头（{detail}）",
        "en": "{file}: face not turned to the camera ({detail})",
    },
    "face.reject.unknown_occupant": {
        "zh": "{file}：没有编号为 {detail} 的住户",
        "en": "{file}: no occupant with id {detail}",
    },
    "face.enrolled": {
        "zh": "{file}：已为住户 {occupant} 登记人脸（质量 {quality}）",
        "en": "{file}: face enrolled for occupant {occupant} (quality {quality})",
    },
    "face.enrol_summary": {
        "zh": "登记 {ok} 张，拒绝 {refused} 张",
        "en": "{ok} photos enrolled, {refused} refused",
    },
    "face.progress": {"zh": "正在登记人脸", "en": "enrolling faces"},
    "face.unusable": {
        "zh": "{file}：没有可用的人脸（{reason}）",
        "en": "{file}: no usable face ({reason})",
    },
    "face.same_person": {"zh": "同一人", "en": "same person"},
    "face.different_person": {"zh": "不是同一人", "en": "different persons"},
    "face.identified": {
        "zh": "识别为住户 {occupant}（距离 {distance}）",
        "en": "identified as occupant {occupant} (distance {distance})",
    },
    "face.unknown": {
        "zh": "未识别（最近距离 {distance}）",
        "en": "not recognised (nearest distance {distance})",
    },
    "face.marked_wrong": {
        "zh": "{file}：已记为“不是住户 {occupant}”，此人脸不会再匹配该住户"
        "（运行中的网关约 {seconds} 秒内生效）",
        "en": "{file}: recorded as NOT occupant {occupant}; this face will no longer match them "
        "(a running gateway picks this up within {seconds} s)",
    },
    "face.vetoed": {
        "zh": "（已排除被标记为误识的住户：{occupants}）",
        "en": "(excluded after a wrong-match mark: {occupants})",
    },
    "demo.cam.at": {"zh": "{seconds} 秒：{what}", "en": "{seconds} s: {what}"},
    "demo.cam.tenant": {
        "zh": "住户 {occupant} 走到门前：识别成功且为活体，门开一次",
        "en": "tenant {occupant} walks up: recognised and live, the door opens once",
    },
    "demo.cam.stranger": {
        "zh": "一位陌生人：未识别，只记为匿名访客，门不开",
        "en": "a stranger: not recognised, counted as an anonymous visitor; the door stays shut",
    },
    "demo.cam.photo": {
        "zh": "有人举起住户 {occupant} 的打印照片晃动：认出是谁，但不是活体，门不开",
        "en": "someone holds up a printed photo of tenant {occupant}: recognised but not live; "
        "the door stays shut",
    },
    "face.bad_csv": {"zh": "CSV 第 {line} 行：{problem}", "en": "CSV line {line}: {problem}"},
    "face.bench_running": {
        "zh": "人脸性能测试进行中（约 {seconds} 秒）…",
        "en": "face benchmark running (about {seconds} s)…",
    },
}


add_messages(FACE_MESSAGES)
tf = t
