#!/usr/bin/env bash
# Install the Debian packages the tests and the demo run against, when missing.
#
# PostgreSQL is installed for the tests of the job database on PostgreSQL; they run
# their own cluster, not the one the package may create and start.
#
# Dovecot is installed normally. Cyrus IMAP and Courier IMAP serve the tests too, but
# their server packages (cyrus-imapd, courier-imap) conflict with dovecot-imapd (all
# provide imap-server), so only their support packages are installed and the two
# server packages are unpacked into $MAILMOVER_SERVERS_DIR (/opt/mailmover-servers),
# where tests/support/cyrus.py and tests/support/courier.py look for them.
set -euo pipefail
servers_dir=${MAILMOVER_SERVERS_DIR:-/opt/mailmover-servers}

need=()
command -v dovecot >/dev/null 2>&1 || need+=(dovecot-imapd)
command -v mbsync >/dev/null 2>&1 || need+=(isync)
[ -x /usr/bin/time ] || need+=(time)  # GNU time: exact peak RSS in bench/
# PostgreSQL: the tests start a throwaway cluster of their own with its initdb and
# pg_ctl (tests/support/postgres.py); psycopg[binary] brings its own libpq.
compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null || need+=(postgresql)
# Chromium for the web app's browser tests (Playwright drives Debian's, none is downloaded).
[ -x /usr/bin/chromium ] || need+=(chromium)
[ -x /usr/bin/chromedriver ] || need+=(chromium-driver)
# Cyrus: master and tools, SASL's password tool, cyradm.
[ -x /usr/lib/cyrus/bin/master ] || need+=(cyrus-common)
command -v saslpasswd2 >/dev/null 2>&1 || need+=(sasl2-bin)
command -v cyradm >/dev/null 2>&1 || need+=(cyrus-admin)
# Courier: couriertcpd, authdaemond and its userdb, and the libraries imapd links to.
command -v couriertcpd >/dev/null 2>&1 || need+=(courier-base)
command -v authdaemond >/dev/null 2>&1 || need+=(courier-authlib courier-authdaemon)
command -v makeuserdb >/dev/null 2>&1 || need+=(courier-authlib-userdb)
for lib in libgamin0 libgdbm6 libidn12 libcourier-unicode4 libwrap0; do
    dpkg-query -W -f='${Status}' "$lib" 2>/dev/null | grep -q "ok installed" || need+=("$lib")
done

# An unpacked server is kept while the support package it was unpacked beside (whose
# exact version it depends on) has the version recorded with it.
installed() { dpkg-query -W -f='${Version}' "$1" 2>/dev/null || true; }
unpacked() { cat "$servers_dir/$1/.beside" 2>/dev/null || true; }
unpack=()
if [ ! -x "$servers_dir/cyrus-imapd/usr/lib/cyrus/bin/imapd" ] ||
    [ "$(unpacked cyrus-imapd)" != "cyrus-common $(installed cyrus-common)" ]; then
    unpack+=(cyrus-imapd)
    need+=(cyrus-common)  # brought to the version of the cyrus-imapd to be unpacked
fi
if [ ! -x "$servers_dir/courier-imap/usr/bin/imapd" ] ||
    [ "$(unpacked courier-imap)" != "courier-base $(installed courier-base)" ]; then
    unpack+=(courier-imap)
    need+=(courier-base)
fi

[ ${#need[@]} -eq 0 ] && [ ${#unpack[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
    SUDO=sudo
else
    SUDO=
fi
$SUDO apt-get update -qq
if [ ${#need[@]} -gt 0 ]; then
    echo "installing ${need[*]} from Debian's packages" >&2
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends \
        "${need[@]}" >/dev/null
fi
for pkg in "${unpack[@]}"; do
    echo "unpacking $pkg into $servers_dir/$pkg (not installed: it conflicts with dovecot-imapd)" >&2
    work=$(mktemp -d)
    # _apt must be able to write where apt-get download saves the package.
    chmod 0777 "$work"
    (cd "$work" && apt-get download -qq "$pkg" >/dev/null)
    $SUDO mkdir -p "$servers_dir"
    $SUDO rm -rf "$servers_dir/$pkg.new"
    $SUDO dpkg-deb -x "$work"/"$pkg"_*.deb "$servers_dir/$pkg.new"
    case $pkg in
        cyrus-imapd) beside=cyrus-common ;;
        courier-imap) beside=courier-base ;;
    esac
    echo "$beside $(installed "$beside")" | $SUDO tee "$servers_dir/$pkg.new/.beside" >/dev/null
    $SUDO rm -rf "$servers_dir/$pkg"
    $SUDO mv "$servers_dir/$pkg.new" "$servers_dir/$pkg"
    rm -rf "$work"
done
