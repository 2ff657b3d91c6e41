# python-pick.sh — sourced by heat-local.sh and keystone-local.sh: choose the
# Python interpreter their venvs are built on.
#
# CPython 3.11.0-3.11.7 and 3.12.0-3.12.1 share the AST constructor's
# recursion counter between threads (CPython gh-106905, fixed by gh-113035 in
# 3.11.8 and 3.12.2): a threaded server such as Heat then fails at random with
# "SystemError: AST constructor recursion depth mismatch (before=78,
# after=165)". OpenStack Heat 27 and Keystone 30 need Python >= 3.11, so the
# interpreter must be 3.11.8+, 3.12.2+ or 3.13+.
#
# pick_python prints the newest such interpreter found on PATH (python3.13,
# python3.12, python3.11, python3) or among pyenv's installed versions; with
# none, it asks pyenv to install the newest 3.12 (needs python.org), and
# otherwise fails saying what to install.

python_is_safe() { # interpreter → exit 0 when it is free of gh-106905
  "$1" -c 'import sys
v = sys.version_info[:3]
ok = v >= (3, 12, 2) or (3, 11, 8) <= v < (3, 12)
sys.exit(0 if ok else 1)' 2>/dev/null
}

python_version_of() { "$1" -c 'import platform; print(platform.python_version())'; }

pick_python() {
  local candidates=() c best="" bestv=""
  for c in python3.13 python3.12 python3.11 python3; do
    c=$(command -v "$c" 2>/dev/null) && candidates+=("$c")
  done
  local root; root=$(pyenv root 2>/dev/null || echo "$HOME/.pyenv")
  for c in "$root"/versions/3.1[1-9]*/bin/python3; do
    [ -x "$c" ] && candidates+=("$c")
  done
  for c in "${candidates[@]}"; do
    python_is_safe "$c" || continue
    local v; v=$(python_version_of "$c")
    if [ -z "$best" ] || [ "$(printf '%s\n%s\n' "$bestv" "$v" | sort -V | tail -1)" = "$v" ] && [ "$v" != "$bestv" ]; then
      best=$c bestv=$v
    fi
  done
  if [ -z "$best" ] && command -v pyenv >/dev/null 2>&1; then
    local want; want=$(pyenv install --list 2>/dev/null | tr -d ' ' | grep -E '^3\.12\.[0-9]+$' | sort -V | tail -1)
    if [ -n "$want" ] && pyenv install -s "$want" >&2; then
      best="$root/versions/$want/bin/python3"
    fi
  fi
  if [ -z "$best" ]; then
    echo "no Python >= 3.11.8 (3.11.x), >= 3.12.2 or 3.13+ found: older 3.11/3.12 builds break threaded servers (CPython gh-106905); install one (e.g. pyenv install 3.12) or set the *_PYTHON variable" >&2
    return 1
  fi
  echo "$best"
}
