# The apk-db helper of qackage's pipeline library.
#
# The test root has apk's installed database but maybe no apk program, and a pipeline
# runs inside that root where qackage's own files cannot be sourced. So every pipeline
# that needs to know what a package installed carries this block verbatim in its
# script; tests/validate/test_pipeline_library.py checks each copy against this one.
# Edit it here, then paste it (indented as the script is) into those pipelines.

# --- apk-db helper: the same text in every pipeline that reads apk's database ---
# apk_db KEY PACKAGE prints what apk's installed database says about an installed
# PACKAGE, without the apk program: KEY "files" lists its files (paths without the
# leading /); a field letter prints that field: T description, V version, and D
# dependencies or p provides one word per line. Fails when PACKAGE is not installed.
apk_db() {
  apk_db_file=/lib/apk/db/installed
  [ -e "$apk_db_file" ] || apk_db_file=/usr/lib/apk/db/installed
  awk -v key="$1" -v want="$2" '
    function flush() {
      if (name == want) { found = 1; printf "%s", out }
      name = ""; dir = ""; out = ""
    }
    /^$/ { flush(); next }
    /^P:/ { name = substr($0, 3) }
    /^F:/ { dir = substr($0, 3); if (dir != "") dir = dir "/" }
    key == "files" && /^R:/ { out = out dir substr($0, 3) "\n" }
    key != "files" && index($0, key ":") == 1 {
      if (key == "D" || key == "p") {
        n = split(substr($0, 3), words, " ")
        for (i = 1; i <= n; i++) out = out words[i] "\n"
      } else {
        out = out substr($0, 3) "\n"
      }
    }
    END { flush(); exit found ? 0 : 1 }
  ' "$apk_db_file"
}
# --- end of the apk-db helper ---
