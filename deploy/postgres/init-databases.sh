#!/usr/bin/env bash
# First start of the PostgreSQL container only (docker-entrypoint-initdb.d): one role and one
# database per service. A service's role owns its database (it runs its own migrations) and
# is no superuser, cannot create databases or roles, and cannot connect to another service's
# database. Passwords come from the environment (deploy/env.example).
set -eo pipefail

for service in intake matching scheduling notification; do
  var="POSTGRES_${service^^}_PASSWORD"
  password="${!var:-}"
  if [[ -z "$password" ]]; then
    echo "$var is not set" >&2
    exit 1
  fi
  psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres \
    -v name="eropaf_${service}" -v password="$password" <<'SQL'
CREATE ROLE :"name" LOGIN PASSWORD :'password' NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION;
CREATE DATABASE :"name" OWNER :"name";
REVOKE ALL ON DATABASE :"name" FROM PUBLIC;
GRANT CONNECT, TEMPORARY ON DATABASE :"name" TO :"name";
SQL
done
