# Sourced by scripts/lib.sh (for scripts/test.sh, farm-test.sh and bench.sh): Apache::Test and
# PostgreSQL refuse root, so as root the work runs as the unprivileged user
# `clinictest` (created when missing). Sets $user and as_user.
if [ "$(id -u)" = 0 ]; then
    user=clinictest
    id "$user" >/dev/null 2>&1 || useradd --system --create-home --shell /bin/bash "$user"
    as_user() { runuser -u "$user" -- "$@"; }
else
    user=$(id -un)
    as_user() { "$@"; }
fi
