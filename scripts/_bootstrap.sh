# shellcheck shell=bash
# Set-up steps shared by scripts/serve and scripts/test. Sourced, never run on its own.
#
# After sourcing: ROOT (the clone), VENV (ROOT/.venv) and the functions below. Nothing here
# prompts, so the same steps work on a laptop, over ssh and in CI (no stdin).

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv"
# The hash of these files decides whether the venv needs a (re)install.
INSTALL_INPUTS=(setup.cfg pyproject.toml)
INSTALL_STAMP="$VENV/.installed-inputs.sha256"

say() { printf '==> %s\n' "$*"; }
die() { printf '\nERROR: %s\n' "$*" >&2; exit 1; }

# Run a command as root: directly when we are root, otherwise through sudo.
as_root() {
    if [ "$(id -u)" -eq 0 ]; then
        "$@"
    elif command -v sudo >/dev/null 2>&1; then
        sudo "$@"
    else
        die "need root to run '$*' (not root and sudo is missing)"
    fi
}

apt_installed() {
    dpkg-query -W -f='${db:Status-Status}' "$1" 2>/dev/null | grep -qx installed
}

# apt_ensure PACKAGE...: install the Debian packages that are not installed yet.
# Quiet on success; on failure the apt output is shown and the script stops.
apt_ensure() {
    local missing=() pkg log
    for pkg in "$@"; do
        apt_installed "$pkg" || missing+=("$pkg")
    done
    [ "${#missing[@]}" -eq 0 ] && return 0
    command -v apt-get >/dev/null 2>&1 || die "missing packages (${missing[*]}) and no apt-get to install them"
    say "Installing Debian packages: ${missing[*]} (one-off, a minute or two)"
    log="$(mktemp)"
    if ! as_root env DEBIAN_FRONTEND=noninteractive apt-get update -q >"$log" 2>&1 \
        || ! as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
            "${missing[@]}" >>"$log" 2>&1; then
        cat "$log" >&2
        rm -f "$log"
        die "apt-get could not install: ${missing[*]}"
    fi
    rm -f "$log"
}

install_inputs_hash() {
    (cd "$ROOT" && cat "${INSTALL_INPUTS[@]}") | sha256sum | cut -d' ' -f1
}

# ensure_venv: .venv with this package installed editable, plus its `test` extra.
# Reinstalls only when setup.cfg/pyproject.toml changed since the last install.
ensure_venv() {
    command -v python3 >/dev/null 2>&1 || die "python3 is not installed"
    if [ ! -x "$VENV/bin/python" ]; then
        # Debian's python3 ships venv without ensurepip until python3-venv is installed.
        if ! python3 -c 'import ensurepip, venv' >/dev/null 2>&1; then
            apt_ensure python3-venv
        fi
        say "Creating virtual environment in .venv"
        python3 -m venv "$VENV" || die "python3 -m venv failed"
        rm -f "$INSTALL_STAMP"
    fi
    local want have=""
    want="$(install_inputs_hash)"
    [ -f "$INSTALL_STAMP" ] && have="$(cat "$INSTALL_STAMP")"
    if [ "$want" != "$have" ]; then
        say "Installing Python dependencies into .venv (first run takes a minute or two)"
        local log
        log="$(mktemp)"
        if ! (cd "$ROOT" && "$VENV/bin/python" -m pip install --disable-pip-version-check \
                --no-input -q -e '.[test]') >"$log" 2>&1; then
            cat "$log" >&2
            rm -f "$log"
            die "pip install -e '.[test]' failed"
        fi
        rm -f "$log"
        printf '%s\n' "$want" >"$INSTALL_STAMP"
    fi
    export PATH="$VENV/bin:$PATH"
    export VIRTUAL_ENV="$VENV"
}

# ensure_catalogues [force]: compile translations/*/LC_MESSAGES/messages.po into .mo files
# (the app loads only those) when a .po is newer than its .mo. Needs the venv (pybabel).
ensure_catalogues() {
    local po mo
    for po in "$ROOT"/translations/*/LC_MESSAGES/messages.po; do
        [ -f "$po" ] || continue
        mo="${po%.po}.mo"
        if [ "${1:-}" = force ] || [ ! -f "$mo" ] || [ "$po" -nt "$mo" ]; then
            "$VENV/bin/pybabel" -q compile -f -i "$po" -o "$mo" \
                || die "pybabel compile failed for $po"
        fi
    done
}
