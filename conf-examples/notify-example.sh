#!/bin/sh
# An example ACMENotifyCommand: tells the operator by mail (sendmail, as Debian's exim4, postfix
# or msmtp-mta provide it), or through syslog (logger) when there is no sendmail.
#
#   ACMENotifyCommand /usr/local/bin/notify-example.sh admin@example.org
#
# mod_acme appends the event and the certificate's name, so the script is called as
#
#   notify-example.sh ADDRESS EVENT NAME
#
# with ACME_EVENT, ACME_DOMAIN, ACME_NAMES, ACME_KEY_TYPE, ACME_SERIAL, ACME_NOT_AFTER (RFC 3339),
# ACME_NOT_AFTER_EPOCH, ACME_ERROR (failed) and ACME_ARI_START/ACME_ARI_END (ari-changed) in its
# environment (docs/notify.md). Events: renewed, activated, failed, expiring, ari-changed.
#
# What mod_acme expects of any such program:
# - it runs as the server's User (www-data), without a shell around it, with only the variables
#   above and PATH in its environment, and is killed (with what it started) after
#   ACMENotifyTimeout (30 s by default);
# - everything it prints goes to the error log with the certificate's name and the event;
# - its exit status is logged; a failing program is not run again for the same event.
set -eu
to=$1
event=$2
name=$3

case "$event" in
activated) exit 0 ;; # renewed said it already; the restart that follows is routine
renewed) subject="new certificate for $name (served after the restart)" ;;
failed) subject="certificate for $name: renewal failed" ;;
expiring) subject="certificate for $name expires $ACME_NOT_AFTER" ;;
ari-changed) subject="certificate for $name: the CA asks for renewal from $ACME_ARI_START" ;;
*) subject="certificate for $name: $event" ;;
esac

body="Event:     $event
Names:     $ACME_NAMES
Key type:  $ACME_KEY_TYPE
Serial:    ${ACME_SERIAL:-none}
Not after: ${ACME_NOT_AFTER:-none}
Error:     ${ACME_ERROR:-none}"

if command -v sendmail >/dev/null 2>&1; then
    printf 'To: %s\nSubject: [mod_acme] %s\n\n%s\n' "$to" "$subject" "$body" | sendmail -t
    echo "mail sent to $to"
else
    logger -t mod_acme "$subject"
    echo "no sendmail: logged to syslog"
fi
