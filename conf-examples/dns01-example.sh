#!/bin/sh
# An example ACMEDNSCommand: sets and removes dns-01 TXT records with nsupdate (RFC 2136
# dynamic updates, signed with a TSIG key), as BIND, Knot, PowerDNS and many providers accept.
#
#   ACMEChallenges  dns-01
#   ACMEDNSCommand  /usr/local/bin/dns01-example.sh /etc/apache2/dns01.key ns1.example.org
#
# mod_acme appends the action, the name and the value, so the script is called as
#
#   dns01-example.sh KEYFILE SERVER setup    NAME VALUE
#   dns01-example.sh KEYFILE SERVER teardown NAME VALUE
#
# NAME is the name being validated (for *.example.org: example.org); the record is the TXT
# record _acme-challenge.NAME, VALUE its text. These are the arguments of mod_md's
# MDChallengeDns01 (version 2), so a script written for mod_md works too.
#
# What mod_acme expects of any such program:
# - exit 0 when the record is set (setup) or gone (teardown); any other status fails the
#   attempt, which is retried later; everything it prints goes to the error log;
# - setup ADDS the value: a wildcard and its base name need two values at the same name at the
#   same time; teardown removes only the value it is given;
# - it runs as the server's User (www-data), without a shell around it, with PATH as its whole
#   environment, and is killed after ACMEDNSTimeout (60 s by default);
# - it need not wait for the record to spread: mod_acme checks that the value is visible at the
#   zone's authoritative servers (or at ACMEDNSResolver) before the CA is asked to validate.
#
# The key file must be readable by the User and nobody else it does not trust:
#   chown root:www-data /etc/apache2/dns01.key && chmod 640 /etc/apache2/dns01.key
# nsupdate is in Debian's package bind9-dnsutils.
set -eu

if [ $# -ne 5 ]; then
    echo "usage: $0 KEYFILE SERVER setup|teardown NAME VALUE" >&2
    exit 2
fi
keyfile=$1 server=$2 action=$3 name=$4 value=$5
ttl=60

case "$action" in
setup) change="update add _acme-challenge.$name. $ttl IN TXT \"$value\"" ;;
teardown) change="update delete _acme-challenge.$name. IN TXT \"$value\"" ;;
*)
    echo "$0: unknown action $action" >&2
    exit 2
    ;;
esac

# The name and value come from mod_acme (a host name, and base64url text): nothing here is
# interpreted by a shell, and nsupdate reads its commands from stdin.
printf 'server %s\n%s\nsend\n' "$server" "$change" | nsupdate -k "$keyfile"
echo "$action _acme-challenge.$name TXT $value at $server: done"
