# Sourced by .ci/run and bench/run.sh: a throwaway PostgreSQL cluster on a free local port, run
# as the `postgres` user (never root), with TLS (its own CA and a server certificate for
# localhost) and password authentication over TCP. Installs Debian's `postgresql` if missing.
#
#   pg_start    starts it; exports TEST_DATABASE_URL (role `auth`, database `auth`, TLS verified
#               against the cluster's CA), TEST_PG_CA (that CA), TEST_PG_OTHER_CA (a CA that did
#               not sign the server), TEST_PG_CTL (`pg_ctl` as the cluster's owner, for the
#               outage test) and PG_PORT, PG_DIR
#   pg_stop     stops it and removes its files (callers run it on exit)

pg_start() {
  if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || ! command -v openssl >/dev/null; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql openssl >/dev/null
  fi
  local bin
  bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
  PG_DIR=$(mktemp -d /tmp/auth-pg.XXXXXX)
  PG_PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  (
    cd "$PG_DIR"
    openssl req -new -x509 -days 2 -nodes -subj "/CN=auth test CA" -keyout ca.key -out ca.crt 2>/dev/null
    openssl req -new -x509 -days 2 -nodes -subj "/CN=other CA" -keyout other.key -out other-ca.crt 2>/dev/null
    openssl req -new -nodes -subj "/CN=localhost" -keyout server.key -out server.csr 2>/dev/null
    printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\n' >san.ext
    openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 2 \
      -extfile san.ext -out server.crt 2>/dev/null
    chmod 600 server.key
  )
  chown -R postgres: "$PG_DIR"
  su postgres -s /bin/sh -c "$bin/initdb -D $PG_DIR/data -U postgres --auth-local=trust --auth-host=scram-sha-256" >/dev/null
  cat >>"$PG_DIR/data/postgresql.conf" <<CONF
port = $PG_PORT
listen_addresses = '127.0.0.1'
unix_socket_directories = '$PG_DIR'
max_connections = 400
ssl = on
ssl_cert_file = '$PG_DIR/server.crt'
ssl_key_file = '$PG_DIR/server.key'
CONF
  TEST_PG_CTL="su postgres -s /bin/sh -c '$bin/pg_ctl -D $PG_DIR/data -l $PG_DIR/server.log -w \$0'"
  eval "$TEST_PG_CTL start" >/dev/null
  su postgres -s /bin/sh -c "$bin/psql -q -h $PG_DIR -p $PG_PORT -U postgres" <<SQL
CREATE ROLE auth LOGIN PASSWORD 'auth-test-password';
CREATE DATABASE auth OWNER auth;
SQL
  export PG_DIR PG_PORT TEST_PG_CTL
  export TEST_PG_CA="$PG_DIR/ca.crt" TEST_PG_OTHER_CA="$PG_DIR/other-ca.crt"
  export TEST_DATABASE_URL="postgres://auth:auth-test-password@localhost:$PG_PORT/auth?sslmode=verify-full&sslrootcert=$TEST_PG_CA"
}

pg_stop() {
  [ -n "${PG_DIR:-}" ] || return 0
  eval "$TEST_PG_CTL stop -m immediate" >/dev/null 2>&1 || true
  rm -rf "$PG_DIR"
  PG_DIR=
}
