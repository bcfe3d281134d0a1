#!/usr/bin/env bash
# Installs meshctl from this checkout.
#
# A clean copy of the sources goes to PREFIX/lib/meshctl and is built there
# (npm ci, npm run build, npm prune --omit=dev --omit=optional); PREFIX/bin/meshctl links to it. The
# checkout's own node_modules/ and dist/ are never copied. As root it also creates the
# meshctl system user and /etc/meshctl, /var/lib/meshctl for the systemd units.
#
# Safe to run again: an unchanged checkout is not rebuilt, and a changed one replaces
# the install only after the new build has succeeded.
set -euo pipefail
# The meshctl service user must be able to read what root installs.
umask 022

readonly MIN_NODE_MAJOR=20 MIN_NODE_MINOR=19
readonly ROOT_PREFIX=/opt/meshctl
readonly SYSTEM_LINK=/usr/local/bin/meshctl
readonly STAMP=.install-stamp

usage() {
  cat <<EOF
Usage: ./install.sh [--prefix DIR] [--no-system] [--force] [--uninstall]

Installs meshctl into DIR/lib/meshctl and links DIR/bin/meshctl.

  --prefix DIR   where to install (default: $ROOT_PREFIX as root, also linked as
                 $SYSTEM_LINK; \$HOME/.local otherwise)
  --no-system    as root, do not create the meshctl user, /etc/meshctl or /var/lib/meshctl
  --force        rebuild even when the install is up to date
  --uninstall    remove the install and its links (keeps /etc/meshctl, /var/lib/meshctl
                 and the meshctl user)
  -h, --help     show this help

Needs Node.js $MIN_NODE_MAJOR.$MIN_NODE_MINOR or newer and npm.
EOF
}

say() { printf '==> %s\n' "$*"; }
die() {
  printf 'install.sh: %s\n' "$1" >&2
  exit "${2:-1}"
}

is_root() { [ "$(id -u)" -eq 0 ]; }

prefix="" uninstall=0 system=1 force=0
while [ $# -gt 0 ]; do
  case "$1" in
    --prefix)
      [ $# -ge 2 ] && [ -n "$2" ] || die "--prefix needs a directory" 64
      prefix=$2
      shift 2
      ;;
    --prefix=*)
      prefix=${1#--prefix=}
      [ -n "$prefix" ] || die "--prefix needs a directory" 64
      shift
      ;;
    --uninstall) uninstall=1; shift ;;
    --no-system) system=0; shift ;;
    --force) force=1; shift ;;
    -h | --help) usage; exit 0 ;;
    *) die "unknown option: $1 (see ./install.sh --help)" 64 ;;
  esac
done

default_prefix=0
if [ -z "$prefix" ]; then
  default_prefix=1
  if is_root; then
    prefix=$ROOT_PREFIX
  else
    prefix="${HOME:?HOME is not set; pass --prefix DIR}/.local"
  fi
fi
case "$prefix" in
  /*) ;;
  *) prefix="$PWD/$prefix" ;;
esac
# Strip trailing slashes so the paths we print and compare are canonical.
while [ "${#prefix}" -gt 1 ] && [ "${prefix%/}" != "$prefix" ]; do prefix=${prefix%/}; done

app="$prefix/lib/meshctl"
bindir="$prefix/bin"
link="$bindir/meshctl"
# Only the default root install claims the system-wide command name.
system_link=""
if is_root && [ "$default_prefix" -eq 1 ]; then system_link=$SYSTEM_LINK; fi

# Removes a link only when it points at this install, so another meshctl is left alone.
remove_link() {
  if [ -L "$1" ] && [ "$(readlink "$1")" = "$app/bin/meshctl" ]; then
    rm -f "$1"
    say "removed $1"
  fi
}

uninstall() {
  remove_link "$link"
  [ -z "$system_link" ] || remove_link "$system_link"
  if [ -d "$app" ]; then
    [ -f "$app/$STAMP" ] || die "$app was not installed by install.sh; not removing it"
    rm -rf "$app"
    say "removed $app"
  else
    say "nothing installed in $app"
  fi
  # Tidy the directories this script may have made, once empty; never shared ones.
  case "$prefix" in
    "${HOME:-/nonexistent}/.local" | /usr | /usr/local | /) ;;
    *) rmdir "$prefix/lib" "$bindir" "$prefix" 2>/dev/null || true ;;
  esac
  local kept=()
  for p in /etc/meshctl /var/lib/meshctl; do [ ! -e "$p" ] || kept+=("$p"); done
  if [ ${#kept[@]} -gt 0 ]; then
    echo "Kept configuration and data: ${kept[*]} (remove them by hand to erase the mesh state)."
  fi
  for kind in agent registry; do
    if [ -e "/etc/systemd/system/meshctl-$kind.service" ]; then
      echo "The unit meshctl-$kind.service is still installed; remove it with:"
      echo "  systemctl disable --now meshctl-$kind.service && rm /etc/systemd/system/meshctl-$kind.service && systemctl daemon-reload"
    fi
  done
}

if [ "$uninstall" -eq 1 ]; then
  uninstall
  exit 0
fi

node_help() {
  cat >&2 <<EOF
install.sh: $1
meshctl needs Node.js $MIN_NODE_MAJOR.$MIN_NODE_MINOR or newer (20, 22 and 24 are supported).
Install Node $MIN_NODE_MAJOR.$MIN_NODE_MINOR+ from your distribution or from NodeSource
(https://github.com/nodesource/distributions), for example on Debian/Ubuntu:
  curl -fsSL https://deb.nodesource.com/setup_22.x | sudo -E bash - && sudo apt-get install -y nodejs
then run ./install.sh again.
EOF
  exit 1
}

check_node() {
  command -v node >/dev/null 2>&1 || node_help "node was not found on PATH."
  local v major minor rest
  v=$(node -v 2>/dev/null) || node_help "\`node -v\` failed."
  v=${v#v}
  major=${v%%.*}
  rest=${v#*.}
  minor=${rest%%.*}
  if ! [[ $major =~ ^[0-9]+$ && $minor =~ ^[0-9]+$ ]]; then
    node_help "cannot read the version of $(command -v node) ('$v')."
  fi
  if ((major < MIN_NODE_MAJOR || (major == MIN_NODE_MAJOR && minor < MIN_NODE_MINOR))); then
    node_help "node $v ($(command -v node)) is too old."
  fi
  command -v npm >/dev/null 2>&1 || die "npm was not found on PATH; it comes with Node.js (some distributions package it separately: apt-get install npm)."
}

check_node

src_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)
grep -q '"name": *"meshctl"' "$src_dir/package.json" 2>/dev/null ||
  die "$src_dir is not a meshctl checkout (no package.json named meshctl)"
if [ -d "$app" ] && [ "$(cd "$app" && pwd -P)" = "$src_dir" ]; then
  die "this is the installed copy in $app; run install.sh from the meshctl checkout (or use --uninstall)"
fi

# What goes into the install: the sources and build inputs, never node_modules/ or dist/.
entries=()
for e in package.json package-lock.json bin src templates scripts install.sh README.md LICENSE "$src_dir"/tsconfig*.json; do
  e=${e##*/}
  [ ! -e "$src_dir/$e" ] || entries+=("$e")
done
for required in package.json bin src templates tsconfig.json; do
  [ -e "$src_dir/$required" ] || die "$src_dir/$required is missing; the checkout is incomplete"
done

# Identifies a build: the copied files plus the node ABI the native modules were built for.
build_id() {
  local dir=$1 sum
  sum=$(cd "$dir" && find "${entries[@]}" -type f -print0 | LC_ALL=C sort -z | xargs -0 sha256sum | sha256sum)
  printf 'source=%s\nnode-abi=%s\nplatform=%s\n' "${sum%% *}" "$(node -p process.versions.modules)" "$(node -p 'process.platform + "-" + process.arch')"
}

have_sha=0
command -v sha256sum >/dev/null 2>&1 && have_sha=1

if [ -d "$app" ] && [ ! -f "$app/$STAMP" ] && [ -n "$(ls -A "$app")" ]; then
  die "$app exists but was not installed by install.sh; move it away or choose another --prefix"
fi

up_to_date=0
if [ "$force" -eq 0 ] && [ "$have_sha" -eq 1 ] && [ -f "$app/$STAMP" ] && [ -d "$app/dist" ] && [ -d "$app/node_modules" ] &&
  [ "$(build_id "$src_dir")" = "$(cat "$app/$STAMP")" ]; then
  up_to_date=1
fi

stage=""
old=""
cleanup() {
  [ -z "$stage" ] || rm -rf "$stage"
  [ -z "$old" ] || rm -rf "$old"
}
trap cleanup EXIT

if [ "$up_to_date" -eq 1 ]; then
  say "meshctl in $app is up to date with $src_dir (use --force to rebuild)"
else
  say "installing meshctl from $src_dir into $app"
  mkdir -p "$prefix/lib" "$bindir"
  # Build next to the target so the final switch is a rename on one file system.
  stage=$(mktemp -d "$prefix/lib/.meshctl.new.XXXXXX")
  chmod 755 "$stage"
  (cd "$src_dir" && cp -R "${entries[@]}" "$stage/")
  # A checkout made under a strict umask has 0600 files; the service user must read them.
  chmod -R u+rwX,go+rX,go-w "$stage"

  # --prefix on the command line: when this runs under `npm run`, npm_config_* variables
  # from the parent must not send npm to the parent's directory.
  if [ -f "$stage/package-lock.json" ]; then
    say "npm ci (dependencies from package-lock.json; native modules may compile, this can take a few minutes)"
    # JOBS: node-gyp compiles native modules (better-sqlite3) on every core when no prebuilt binary can be fetched.
    JOBS="${JOBS:-max}" npm --prefix "$stage" ci --include=dev --no-audit --no-fund --prefer-offline
  else
    say "npm install (no package-lock.json)"
    npm --prefix "$stage" install --include=dev --no-audit --no-fund
  fi
  say "npm run build"
  npm --prefix "$stage" run build
  # --omit=optional too: optional peers of runtime packages (valibot's on typescript, for its
  # types) mark the compiler "dev or optional", and --omit=dev alone would keep it.
  say "npm prune --omit=dev --omit=optional"
  npm --prefix "$stage" prune --omit=dev --omit=optional --no-audit --no-fund
  chmod 755 "$stage/bin/meshctl"
  if [ "$have_sha" -eq 1 ]; then build_id "$stage" >"$stage/$STAMP"; else : >"$stage/$STAMP"; fi

  if [ -e "$app" ]; then
    old="$prefix/lib/.meshctl.old.$$"
    mv "$app" "$old"
  fi
  if ! mv "$stage" "$app"; then
    # Put the previous install back rather than leave none.
    [ -z "$old" ] || { mv "$old" "$app" && old=""; }
    die "could not move the new build into $app"
  fi
  stage=""
  if [ -n "$old" ]; then
    rm -rf "$old"
    old=""
  fi
  say "built $app"
fi

mkdir -p "$bindir"
ln -sfn "$app/bin/meshctl" "$link"
say "linked $link"
if [ -n "$system_link" ]; then
  mkdir -p "${system_link%/*}"
  ln -sfn "$app/bin/meshctl" "$system_link"
  say "linked $system_link"
fi

make_dir() { # path mode owner group
  mkdir -p "$1"
  chown "$3:$4" "$1"
  chmod "$2" "$1"
}

if is_root && [ "$system" -eq 1 ]; then
  nologin=/usr/sbin/nologin
  [ -x "$nologin" ] || nologin=/sbin/nologin
  if ! getent group meshctl >/dev/null; then
    groupadd --system meshctl
    say "created group meshctl"
  fi
  if ! id -u meshctl >/dev/null 2>&1; then
    useradd --system --no-create-home --home-dir /var/lib/meshctl --shell "$nologin" --gid meshctl meshctl
    say "created user meshctl"
  fi
  # Config is root's, readable by the service; the agent reads services.d.
  make_dir /etc/meshctl 0750 root meshctl
  make_dir /etc/meshctl/services.d 0750 root meshctl
  # Keys and the store live here: only the service user may enter.
  make_dir /var/lib/meshctl 0700 meshctl meshctl
  say "system user meshctl, /etc/meshctl and /var/lib/meshctl are ready"
fi

cmd_dir=$bindir
[ -z "$system_link" ] || cmd_dir=${system_link%/*}
echo
echo "meshctl is installed: $cmd_dir/meshctl -> $app/bin/meshctl"
case ":$PATH:" in
  *":$cmd_dir:"*) ;;
  *)
    echo
    echo "$cmd_dir is not on your PATH. Add it, e.g. in ~/.profile:"
    echo "  export PATH=\"$cmd_dir:\$PATH\""
    ;;
esac
cat <<EOF

Next steps:
  meshctl demo                                   # the whole mesh on this machine
  # control plane host:
  sudo meshctl init --server && sudo meshctl registry install --now
  # every other host:
  sudo meshctl init --join https://<control-plane>:7443 --token <join-token>
  sudo meshctl agent install --now
EOF
if ! is_root || [ "$system" -eq 0 ]; then
  echo
  echo "The systemd units need the meshctl user and directories: run 'sudo ./install.sh' for those."
fi
if [ "$up_to_date" -eq 0 ] && [ -d /run/systemd/system ]; then
  for kind in agent registry; do
    if systemctl is-active --quiet "meshctl-$kind.service" 2>/dev/null; then
      echo "meshctl-$kind is running the previous build: systemctl restart meshctl-$kind"
    fi
  done
fi
