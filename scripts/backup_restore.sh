#!/usr/bin/env bash
# Back up FeedbackHub's PostgreSQL database and prove the backup restores.
#
#   scripts/backup_restore.sh [--keep-scratch] [DATABASE_URL]
#
# 1. pg_dump (custom format) into $BACKUP_DIR (default ./backups), from a snapshot
#    exported by a REPEATABLE READ transaction that stays open;
# 2. counts the rows of every table in that same snapshot (so the comparison is exact
#    even while the app keeps writing);
# 3. restores the dump into a scratch database (default <name>_restore_check on the same
#    server, dropped first and, unless --keep-scratch, afterwards);
# 4. compares table by table and exits 1 on any difference.
#
# DATABASE_URL (argument or environment, also DATABASE_URL_FILE) is postgres://user[:pw]@host[:port]/name;
# the user needs CREATEDB. pg_dump must be at least the server's major version.
# Output: one line per table, then "OK <file>" or "MISMATCH". Exit 0 only when every
# table has the same row count after the restore.
set -euo pipefail

keep_scratch=0
if [[ "${1:-}" == "--keep-scratch" ]]; then keep_scratch=1; shift; fi
url="${1:-${DATABASE_URL:-}}"
if [[ -z "$url" && -n "${DATABASE_URL_FILE:-}" ]]; then url="$(tr -d '[:space:]' < "$DATABASE_URL_FILE")"; fi
if [[ ! "$url" =~ ^(postgres(ql)?://[^/]+)/([^/?]+)(\?.*)?$ ]]; then
  echo "usage: $0 [--keep-scratch] postgres://user@host:port/dbname (or set DATABASE_URL)" >&2
  exit 2
fi
base="${BASH_REMATCH[1]}"
dbname="${BASH_REMATCH[3]}"
query="${BASH_REMATCH[4]:-}"
scratch="${SCRATCH_DB:-${dbname}_restore_check}"
scratch_url="$base/$scratch$query"
if [[ "$scratch" == "$dbname" ]]; then echo "the scratch database must not be the source" >&2; exit 2; fi

export PGOPTIONS="${PGOPTIONS:-} -c client_min_messages=warning"
backup_dir="${BACKUP_DIR:-backups}"
mkdir -p "$backup_dir"
file="$backup_dir/feedbackhub-$dbname-$(date -u +%Y%m%dT%H%M%SZ).dump"

# One query that counts every table of the public schema: "table|rows" lines.
count_sql="SELECT table_name || '|' || (xpath('/row/c/text()', query_to_xml(format('SELECT count(*) AS c FROM %I.%I', table_schema, table_name), false, true, '')))[1]::text FROM information_schema.tables WHERE table_schema = 'public' AND table_type = 'BASE TABLE' ORDER BY table_name;"
psql_opts=(-X -q -A -t -v ON_ERROR_STOP=1)

# Hold a snapshot open for the dump and the source counts.
coproc SNAP { psql "${psql_opts[@]}" "$url" 2>&1; }
snap_in=${SNAP[1]}
snap_out=${SNAP[0]}
cleanup() {
  { echo "ROLLBACK;"; echo "\\q"; } >&"$snap_in" 2>/dev/null || true
  if [[ $keep_scratch -eq 0 ]]; then
    psql "${psql_opts[@]}" "$url" -c "DROP DATABASE IF EXISTS \"$scratch\";" >/dev/null 2>&1 || true
  fi
}
trap cleanup EXIT

read_until_end() {  # print the coprocess's lines up to the __END__ marker
  local line
  while IFS= read -r -t 600 line <&"$snap_out"; do
    [[ "$line" == "__END__" ]] && return 0
    if [[ "$line" == *ERROR* || "$line" == *FATAL* || "$line" == psql:* ]]; then echo "$line" >&2; return 1; fi
    [[ -n "$line" ]] && printf '%s\n' "$line"
  done
  echo "psql ended early" >&2
  return 1
}

printf '%s\n' "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY;" "SELECT pg_export_snapshot();" "SELECT '__END__';" >&"$snap_in"
snapshot="$(read_until_end)"
[[ -n "$snapshot" ]] || { echo "could not export a snapshot" >&2; exit 1; }

pg_dump --format=custom --no-owner --no-privileges --snapshot="$snapshot" --file="$file" "$url"
printf '%s\n' "$count_sql" "SELECT '__END__';" >&"$snap_in"
source_counts="$(read_until_end)"

psql "${psql_opts[@]}" "$url" -c "DROP DATABASE IF EXISTS \"$scratch\";" >/dev/null
psql "${psql_opts[@]}" "$url" -c "CREATE DATABASE \"$scratch\";" >/dev/null
pg_restore --no-owner --no-privileges --exit-on-error --dbname="$scratch_url" "$file"
restored_counts="$(psql "${psql_opts[@]}" "$scratch_url" -c "$count_sql")"

status=0
printf '%-40s %12s %12s\n' table source restored
while IFS='|' read -r table rows; do
  restored="$(grep -E "^${table}\|" <<<"$restored_counts" | cut -d'|' -f2 || true)"
  mark=""
  if [[ "$restored" != "$rows" ]]; then mark="  <-- differs"; status=1; fi
  printf '%-40s %12s %12s%s\n' "$table" "$rows" "${restored:-missing}" "$mark"
done <<<"$source_counts"
tables="$(wc -l <<<"$source_counts")"
if [[ $status -eq 0 ]]; then
  echo "OK $file ($tables tables, $(du -h "$file" | cut -f1))"
else
  echo "MISMATCH: the restore of $file differs from the source" >&2
fi
exit $status
