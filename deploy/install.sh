#!/usr/bin/env bash
# Install doorgate on Raspberry Pi OS 64-bit / Debian 12 (arm64 or x86_64). Idempotent: run it
# again after an upgrade or after copying certificates; it never overwrites the config or a secret.
#
#   sudo deploy/install.sh --site xh-001 --gateway bldg-12 --broker mqtts://mqtt.example:8883
#
# What it does (every path below is under --root when given):
#   - service user `doorgate` (system user, groups dialout video gpio; `gpio` is created if missing)
#   - PREFIX/venv: the locked dependency set (uv.lock; prebuilt dlib-bin, nothing compiles)
#     plus doorgate itself, built from this checkout; PREFIX/bin/doorgate-admin wrapper
#   - /etc/doorgate/doorgate.toml from the commented template (site, gateway, broker filled in)
#   - /etc/doorgate/credentials/hash_key: 32 random bytes (hex), 0600, owned by the service user;
#     --credentials-from DIR copies ca.crt, gateway.crt, gateway.key, station.pub… in as well
#   - /etc/udev/rules.d/99-doorgate.rules: /dev/doorgate/<chip>-<serial> names for the readers
#   - /etc/systemd/system/doorgate.service, doorgate-station.service, and the drop-in
#     doorgate.service.d/credentials.conf with one LoadCredential= per credential file
#   - without --root: systemctl daemon-reload, enable doorgate.service; udev rules reloaded
set -euo pipefail

usage() {
    cat <<'EOF'
usage: install.sh [options]
  --root DIR              install into DIR as if it were / (tests, image builds); no user
                          creation unless DIR/etc/passwd exists, no systemctl, no udevadm
  --prefix DIR            where the software goes (default /opt/doorgate)
  --from-source DIR       the doorgate checkout to install (default: this script's checkout)
  --wheel-dir DIR         install offline from wheels in DIR (no package index)
  --python PATH           interpreter for the venv (default /usr/bin/python3, 3.11+)
  --uv PATH               uv binary to use (default: $UV, uv on PATH, the checkout's .tools/,
                          else uv is pip-installed into PREFIX/tools)
  --no-venv               skip the Python environment (config, secrets, udev, units only)
  --site ID --gateway ID  written into a new doorgate.toml (default xh-001 / bldg-12)
  --broker URL            broker URL for a new doorgate.toml (mqtt:// comments out the TLS files)
  --credentials-from DIR  copy missing credential files (ca.crt, gateway.crt, gateway.key,
                          station.pub, broker_password) from DIR
  --enable-station        also enable doorgate-station.service (a station machine)
  -h, --help              this text
EOF
}

ROOT=""
PREFIX=/opt/doorgate
SRC="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
WHEELS=""
PYTHON=""
UV_BIN="${UV:-}"
VENV=1
SITE=xh-001
GATEWAY=bldg-12
BROKER=""
CREDS_FROM=""
ENABLE_STATION=0
USER_NAME=doorgate

while [ $# -gt 0 ]; do
    case "$1" in
        --root) ROOT="$(realpath -m "$2")"; shift 2 ;;
        --prefix) PREFIX="$2"; shift 2 ;;
        --from-source) SRC="$(realpath "$2")"; shift 2 ;;
        --wheel-dir) WHEELS="$(realpath "$2")"; shift 2 ;;
        --python) PYTHON="$2"; shift 2 ;;
        --uv) UV_BIN="$2"; shift 2 ;;
        --no-venv) VENV=0; shift ;;
        --site) SITE="$2"; shift 2 ;;
        --gateway) GATEWAY="$2"; shift 2 ;;
        --broker) BROKER="$2"; shift 2 ;;
        --credentials-from) CREDS_FROM="$(realpath "$2")"; shift 2 ;;
        --enable-station) ENABLE_STATION=1; shift ;;
        -h|--help) usage; exit 0 ;;
        *) echo "install.sh: unknown option $1" >&2; usage >&2; exit 2 ;;
    esac
done

[ "$ROOT" = "/" ] && ROOT=""
case "$PREFIX" in /*) ;; *) echo "install.sh: --prefix must be absolute" >&2; exit 2 ;; esac
for id in "$SITE" "$GATEWAY"; do
    [[ "$id" =~ ^[A-Za-z0-9][A-Za-z0-9_-]*$ ]] || {
        echo "install.sh: site/gateway id '$id': letters, digits, - and _ only" >&2; exit 2; }
done
if [ -z "$ROOT" ] && [ "$(id -u)" -ne 0 ]; then
    echo "install.sh: run as root (sudo), or give --root DIR" >&2
    exit 1
fi
[ -f "$SRC/pyproject.toml" ] && [ -d "$SRC/systemd" ] || {
    echo "install.sh: $SRC is not a doorgate checkout" >&2; exit 1; }

ETC="$ROOT/etc/doorgate"
CREDS="$ETC/credentials"
UNITS="$ROOT/etc/systemd/system"
CHANGED=0

say() { echo "install.sh: $*"; }

# The service user's numeric ids, if it exists on the target (empty otherwise).
owner() {
    local passwd="${ROOT:-}/etc/passwd"
    [ -f "$passwd" ] || return 0
    awk -F: -v u="$USER_NAME" '$1 == u { print $3 ":" $4 }' "$passwd"
}

# put SRC DEST MODE: copy when missing or different; report what changed.
put() {
    local src="$1" dest="$2" mode="$3"
    if [ -f "$dest" ] && cmp -s "$src" "$dest"; then
        chmod "$mode" "$dest"
        return 0
    fi
    install -D -m "$mode" "$src" "$dest"
    say "wrote ${dest#"$ROOT"}"
    CHANGED=1
}

# --- service user ------------------------------------------------------------------------
make_user() {
    local args=()
    [ -n "$ROOT" ] && args=(--root "$ROOT")
    if [ -n "$ROOT" ] && [ ! -f "$ROOT/etc/passwd" ]; then
        say "no $ROOT/etc/passwd: not creating user $USER_NAME (on the target: a system user" \
            "in groups dialout video gpio, e.g. run this script there without --root)"
        return 0
    fi
    local group
    for group in dialout video gpio; do
        if ! grep -q "^$group:" "${ROOT:-}/etc/group"; then
            groupadd "${args[@]}" --system "$group"
            say "created group $group"
        fi
    done
    if ! grep -q "^$USER_NAME:" "${ROOT:-}/etc/passwd"; then
        useradd "${args[@]}" --system --user-group --no-create-home --home-dir /var/lib/doorgate \
            --shell /usr/sbin/nologin --groups dialout,video,gpio "$USER_NAME"
        say "created user $USER_NAME (groups dialout video gpio)"
    else
        usermod "${args[@]}" --append --groups dialout,video,gpio "$USER_NAME"
    fi
}
make_user
IDS="$(owner)"

# --- Python environment ------------------------------------------------------------------
find_python() {
    if [ -n "$PYTHON" ]; then echo "$PYTHON"; return; fi
    if [ -x /usr/bin/python3 ]; then echo /usr/bin/python3; else command -v python3; fi
}

find_uv() {
    if [ -n "$UV_BIN" ]; then echo "$UV_BIN"; return; fi
    if command -v uv >/dev/null 2>&1; then command -v uv; return; fi
    if [ -x "$SRC/.tools/bin/uv" ]; then echo "$SRC/.tools/bin/uv"; return; fi
    local tools="$ROOT$PREFIX/tools"
    if [ ! -x "$tools/bin/uv" ]; then
        say "installing uv into ${tools#"$ROOT"} (first run only)"
        "$(find_python)" -m venv "$tools"
        local pip_args=(-q)
        [ -n "$WHEELS" ] && pip_args+=(--no-index --find-links "$WHEELS")
        "$tools/bin/pip" install "${pip_args[@]}" 'uv>=0.5,<1'
    fi
    echo "$tools/bin/uv"
}

# What is installed in the venv (to say whether this run changed it).
venv_state() {
    { cat "$ROOT$PREFIX/venv/pyvenv.cfg"; ls "$ROOT$PREFIX"/venv/lib/python3*/site-packages; } \
        2>/dev/null | md5sum || true
}

if [ "$VENV" = 1 ]; then
    python="$(find_python)"
    "$python" -c 'import sys; assert sys.version_info >= (3, 11)' 2>/dev/null || {
        echo "install.sh: $python is not Python 3.11+ (Debian 12: apt install python3 python3-venv)" >&2
        exit 1; }
    uv="$(find_uv)"
    # --reinstall-package: uv caches the built project by pyproject.toml alone; rebuild it so an
    # upgraded checkout really lands in the venv.
    sync_args=(sync --locked --no-dev --no-editable --quiet --project "$SRC"
        --reinstall-package doorgate)
    [ -n "$WHEELS" ] && sync_args+=(--offline --no-index --find-links "$WHEELS")
    before="$(venv_state)"
    # The lock replaces face_recognition's `dlib` with the prebuilt dlib-bin: no compiler.
    UV_PROJECT_ENVIRONMENT="$ROOT$PREFIX/venv" UV_PYTHON="$python" UV_PYTHON_DOWNLOADS=never \
        "$uv" "${sync_args[@]}"
    after="$(venv_state)"
    if [ "$before" != "$after" ]; then say "built ${PREFIX}/venv"; CHANGED=1; fi
    [ -x "$ROOT$PREFIX/venv/bin/doorgate" ] || { echo "install.sh: venv has no doorgate" >&2; exit 1; }
else
    say "--no-venv: not building $PREFIX/venv"
fi
put "$SRC/README.md" "$ROOT$PREFIX/README.md" 0644

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

# The admin wrapper: the CLI as the service user, reading the secrets where the daemon does.
cat >"$tmp/doorgate-admin" <<EOF
#!/bin/sh
# doorgate as user $USER_NAME with the daemon's config and credentials (installed by install.sh).
export DOORGATE_CONFIG=/etc/doorgate/doorgate.toml CREDENTIALS_DIRECTORY=/etc/doorgate/credentials
if [ "\$(id -u)" -eq 0 ]; then
    exec runuser -u $USER_NAME -- $PREFIX/venv/bin/doorgate "\$@"
fi
exec $PREFIX/venv/bin/doorgate "\$@"
EOF
put "$tmp/doorgate-admin" "$ROOT$PREFIX/bin/doorgate-admin" 0755

# --- config and secrets -------------------------------------------------------------------
install -d -m 0750 "$ETC"
install -d -m 0700 "$CREDS"
if [ -n "$CREDS_FROM" ]; then
    for f in "$CREDS_FROM"/*; do
        [ -f "$f" ] || continue
        name="$(basename "$f")"
        case "$name" in *.key|hash_key|broker_password) mode=0600 ;; *) mode=0644 ;; esac
        if [ ! -e "$CREDS/$name" ]; then
            install -m "$mode" "$f" "$CREDS/$name"
            say "copied credential $name"
            CHANGED=1
        fi
    done
fi
if [ ! -e "$CREDS/hash_key" ]; then
    # 32 random bytes, written as hex (the key file is read as text and stripped).
    (umask 077; od -An -tx1 -N32 /dev/urandom | tr -d ' \n' >"$CREDS/hash_key")
    chmod 0600 "$CREDS/hash_key"
    say "generated /etc/doorgate/credentials/hash_key"
    CHANGED=1
fi

put "$SRC/deploy/doorgate.example.toml" "$ETC/doorgate.example.toml" 0644
if [ ! -e "$ETC/doorgate.toml" ]; then
    scheme="${BROKER%%://*}"
    sed -e "s|^site = \"[^\"]*\"|site = \"$SITE\"|" \
        -e "s|^gateway = \"[^\"]*\"|gateway = \"$GATEWAY\"|" \
        ${BROKER:+-e "s|^url = \"[^\"]*\"|url = \"$BROKER\"|"} \
        "$SRC/deploy/doorgate.example.toml" >"$tmp/doorgate.toml"
    if [ -n "$BROKER" ] && [ "$scheme" = mqtt ]; then
        # Plain MQTT (a broker on the same host or LAN): no certificate files.
        sed -i -E 's/^(ca_file|cert_file|key_file) /# \1 /' "$tmp/doorgate.toml"
    fi
    if [ ! -e "$CREDS/station.pub" ]; then
        # No station key yet: signed commands stay off until station.pub is copied in.
        sed -i -E 's/^public_key_file /# public_key_file /' "$tmp/doorgate.toml"
    fi
    install -m 0640 "$tmp/doorgate.toml" "$ETC/doorgate.toml"
    say "wrote /etc/doorgate/doorgate.toml (site $SITE, gateway $GATEWAY): edit readers, doors, cameras"
    CHANGED=1
else
    say "kept /etc/doorgate/doorgate.toml"
fi
# The store's folder (systemd's StateDirectory= makes it too; the CLI may run first).
install -d -m 0700 "$ROOT/var/lib/doorgate"
if [ -n "$IDS" ] && [ "$(id -u)" -eq 0 ]; then
    chown "0:${IDS#*:}" "$ETC" "$ETC/doorgate.toml"
    chown -R "$IDS" "$CREDS" "$ROOT/var/lib/doorgate"
fi

# --- udev ---------------------------------------------------------------------------------
put "$SRC/deploy/99-doorgate.rules" "$ROOT/etc/udev/rules.d/99-doorgate.rules" 0644

# --- systemd ------------------------------------------------------------------------------
for unit in doorgate.service doorgate-station.service; do
    sed "s|/opt/doorgate|$PREFIX|g" "$SRC/systemd/$unit" >"$tmp/$unit"
    put "$tmp/$unit" "$UNITS/$unit" 0644
done
{
    echo "# Written by install.sh: one credential per file in /etc/doorgate/credentials."
    echo "# Run install.sh again after adding or removing a file there."
    echo "[Service]"
    for f in "$CREDS"/*; do
        name="$(basename "$f")"
        [ -f "$f" ] && [ "$name" != hash_key ] || continue   # hash_key: in the unit itself
        echo "LoadCredential=$name:/etc/doorgate/credentials/$name"
    done
} >"$tmp/credentials.conf"
put "$tmp/credentials.conf" "$UNITS/doorgate.service.d/credentials.conf" 0644

if [ -z "$ROOT" ]; then
    if command -v udevadm >/dev/null 2>&1; then
        udevadm control --reload-rules || true
        udevadm trigger --subsystem-match=tty --subsystem-match=video4linux \
            --subsystem-match=gpio || true
    fi
    if [ -d /run/systemd/system ]; then
        systemctl daemon-reload
        systemctl enable doorgate.service
        [ "$ENABLE_STATION" = 1 ] && systemctl enable doorgate-station.service
        say "enabled doorgate.service: check the config, then systemctl start doorgate"
    else
        say "systemd is not running: units installed, not enabled"
    fi
else
    say "--root: not running systemctl or udevadm"
fi

if [ "$CHANGED" = 0 ]; then say "nothing changed"; else say "done"; fi
