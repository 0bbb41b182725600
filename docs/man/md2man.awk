# SPDX-License-Identifier: Apache-2.0
# Turns a page of docs/ (Markdown: headings, paragraphs, lists, tables,
# fenced code) into a man page, so that fleetd.conf(5) is made from
# docs/config.md, the one description of the keys.
#   awk -v name=fleetd.conf -v section=5 -v version=0.1.0 \
#       -v summary="fleetd configuration file" -f md2man.awk docs/config.md
function inline(s) {
	gsub(/\\/, "\\e", s)
	# [text](link) -> text
	while (match(s, /\[[^\]]*\]\([^)]*\)/)) {
		t = substr(s, RSTART + 1, RLENGTH - 2)
		sub(/\]\(.*/, "", t)
		s = substr(s, 1, RSTART - 1) t substr(s, RSTART + RLENGTH)
	}
	while (match(s, /`[^`]*`/))
		s = substr(s, 1, RSTART - 1) "\\fB" substr(s, RSTART + 1, RLENGTH - 2) "\\fR" substr(s, RSTART + RLENGTH)
	while (match(s, /\*\*[^*]*\*\*/))
		s = substr(s, 1, RSTART - 1) "\\fB" substr(s, RSTART + 2, RLENGTH - 4) "\\fR" substr(s, RSTART + RLENGTH)
	sub(/^[.']/, "\\\\\\&&", s)
	return s
}
function trim(s) {
	sub(/^[ \t]+/, "", s)
	sub(/[ \t]+$/, "", s)
	return s
}
BEGIN {
	printf ".TH %s %s \"\" \"fleetd %s\" \"fleetd manual\"\n", toupper(name), section, version
	printf ".SH NAME\n%s \\- %s\n.SH DESCRIPTION\n", name, summary
	para = 0; code = 0; table = 0
}
/^```/ {
	if (code) { print ".fi\n.RE"; code = 0 } else { print ".PP\n.RS 4\n.nf"; code = 1 }
	next
}
code { line = $0; gsub(/\\/, "\\e", line); sub(/^[.']/, "\\\\\\&&", line); print line; next }
/^# / { next }
/^## / { sub(/^## /, ""); print ".SH " toupper(inline($0)); para = 0; next }
/^### / { sub(/^### /, ""); print ".SS " inline($0); para = 0; next }
/^\|/ {
	n = split($0, cell, "|")
	if (!table) { table = 1; next } # the header row
	if ($0 ~ /^\|[ :|-]+\|?$/) next # the rule under it
	key = trim(cell[2]); def = trim(cell[3]); text = ""
	for (i = 4; i < n; i++) text = text (i > 4 ? "|" : "") cell[i]
	print ".TP"
	print inline(key)
	print inline(trim(text)) (def != "" ? " (default: " inline(def) ")" : "")
	next
}
/^[-*] / { sub(/^[-*] /, ""); print ".IP \\(bu 2\n" inline($0); para = 1; next }
/^[ \t]*$/ { table = 0; if (!para) { print ".PP"; para = 1 }; next }
{ print inline($0); para = 0 }
END { if (code) print ".fi\n.RE" }
