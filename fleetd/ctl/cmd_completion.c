/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fleetctl completion bash|zsh|fish: shell completion scripts generated
 * from fleetctl's own command table, so a new command or option appears
 * without editing this file. The table is walked by running every command
 * in probe mode (ctl->probe set): a group (ctl_dispatch) reports its
 * subcommands and a command (its --help, through ctl_opt_common) reports
 * its help instead of running; the options are read from that help (the
 * "  --name VALUE  text" lines and the usage line), the global ones from
 * CTL_LONGOPTS_GLOBAL. Nothing is sent anywhere; fleetctl runs on the
 * operator's machine and the table is its own.
 *
 * `fleetctl completion commands` lists every command path, one a line
 * (the man page build runs `fleetctl PATH --help` for each).
 */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"
#include "fleet_version.h"

#define PROBE_MAX_NODES 160
#define PROBE_MAX_KIDS 32
#define PROBE_MAX_OPTS 32
#define PROBE_PATH_MAX 128
#define PROBE_TEXT_MAX 160

struct probe_opt {
	char name[48]; /* "--uses" or "-o" */
	char value[48]; /* "N", "FILE", "table|json", "" if none */
	char desc[PROBE_TEXT_MAX];
};

struct probe_node {
	char path[PROBE_PATH_MAX]; /* "tokens create" */
	char summary[PROBE_TEXT_MAX];
	bool group;
	size_t nkids; /* group: its subcommands */
	char kids[PROBE_MAX_KIDS][48];
	char kid_summary[PROBE_MAX_KIDS][PROBE_TEXT_MAX];
	size_t nopts; /* command: its own options */
	struct probe_opt opts[PROBE_MAX_OPTS];
};

struct ctl_probe {
	struct probe_node nodes[PROBE_MAX_NODES];
	size_t n;
	char current[PROBE_PATH_MAX]; /* path of the command being probed */
	char summary[PROBE_TEXT_MAX]; /* its parent's summary of it */
	bool overflow;
};

static const struct ctl_help completion_help = {
	"completion", "bash|zsh|fish",
	"Prints a shell completion script for fleetctl, made from its own\n"
	"command table. Load it with:\n"
	"  bash: source <(fleetctl completion bash)\n"
	"        (or save it as /usr/share/bash-completion/completions/"
	"fleetctl)\n"
	"  zsh:  fleetctl completion zsh > \"${fpath[1]}/_fleetctl\"\n"
	"  fish: fleetctl completion fish > "
	"~/.config/fish/completions/fleetctl.fish\n"};

/* Copies the first line of text, without a trailing period. */
static void
first_line(char *out, size_t outlen, const char *text)
{
	size_t len = strcspn(text, "\n");

	if (len >= outlen)
		len = outlen - 1;
	memcpy(out, text, len);
	out[len] = '\0';
	if (len > 0 && out[len - 1] == '.')
		out[len - 1] = '\0';
}

static struct probe_node *
probe_add(struct ctl_probe *p, const char *path)
{
	struct probe_node *node;

	if (p->n == PROBE_MAX_NODES) {
		p->overflow = true;
		return NULL;
	}
	node = &p->nodes[p->n++];
	memset(node, 0, sizeof(*node));
	snprintf(node->path, sizeof(node->path), "%s", path);
	snprintf(node->summary, sizeof(node->summary), "%s", p->summary);
	return node;
}

static void
node_add_opt(struct probe_node *node, const char *name, size_t namelen,
	     const char *value, size_t valuelen, const char *desc)
{
	struct probe_opt *o;

	if (namelen == 0 || namelen >= sizeof(o->name))
		return;
	for (size_t i = 0; i < node->nopts; i++) {
		if (strlen(node->opts[i].name) == namelen &&
		    strncmp(node->opts[i].name, name, namelen) == 0)
			return;
	}
	if (node->nopts == PROBE_MAX_OPTS)
		return;
	o = &node->opts[node->nopts++];
	memcpy(o->name, name, namelen);
	o->name[namelen] = '\0';
	if (valuelen >= sizeof(o->value))
		valuelen = sizeof(o->value) - 1;
	memcpy(o->value, value, valuelen);
	o->value[valuelen] = '\0';
	first_line(o->desc, sizeof(o->desc), desc);
}

/* One help line "  -o, --output F   text" or "  --uses N   text". */
static void
parse_option_line(struct probe_node *node, const char *line)
{
	const char *p = line, *name, *value = "", *desc = "";
	size_t namelen, valuelen = 0;

	while (*p == ' ')
		p++;
	if (p - line < 1 || p - line > 4 || *p != '-')
		return;
	if (p[1] != '-' && p[2] == ',' && p[3] == ' ')
		p += 4; /* "-o, --output": the long name */
	if (p[0] != '-' || p[1] != '-')
		return;
	name = p;
	while (*p != '\0' && *p != '\n' && *p != ' ' && *p != '=')
		p++;
	namelen = (size_t)(p - name);
	if (*p == ' ' || *p == '=') {
		const char *v = p + 1;

		if (*v != ' ' && *v != '\n' && *v != '\0') {
			value = v;
			while (*v != '\0' && *v != '\n' && *v != ' ')
				v++;
			valuelen = (size_t)(v - value);
			p = v;
		}
	}
	while (*p == ' ')
		p++;
	if (*p != '\n')
		desc = p;
	node_add_opt(node, name, namelen, value, valuelen, desc);
}

/* The usage line: "--uses N --expires DUR [--label k=v]... [--all]". */
static void
parse_usage(struct probe_node *node, const char *usage)
{
	const char *p = usage;

	while ((p = strstr(p, "--")) != NULL) {
		const char *name = p, *value = "";
		size_t namelen, valuelen = 0;

		while (*p != '\0' && *p != ' ' && *p != ']' && *p != '=')
			p++;
		namelen = (size_t)(p - name);
		if (*p == ' ' && p[1] != '-' && p[1] != '[' && p[1] != '\0' &&
		    (isupper((unsigned char)p[1]) || strchr(p + 1, '=') ||
		     p[1] == '<')) {
			value = p + 1;
			valuelen = strcspn(value, " ]");
			/* "ID" after an option without a value is an
			 * argument; the help's own line tells (added first,
			 * so it wins). */
		}
		node_add_opt(node, name, namelen, value, valuelen, "");
	}
}

int
ctl_probe_help(struct ctl *ctl, const struct ctl_help *h)
{
	struct ctl_probe *p = ctl->probe;
	struct probe_node *node = probe_add(p, p->current);
	const char *line;

	if (node == NULL)
		return CTL_EXIT_OK;
	if (node->summary[0] == '\0')
		first_line(node->summary, sizeof(node->summary), h->text);
	for (line = h->text; line != NULL && *line != '\0';) {
		parse_option_line(node, line);
		line = strchr(line, '\n');
		if (line != NULL)
			line++;
	}
	parse_usage(node, h->usage);
	return CTL_EXIT_OK;
}

/* Runs one subcommand the way ctl_dispatch does, with "--help". */
static void
probe_sub(struct ctl *ctl, const struct ctl_subcmd *sub)
{
	char name[64], help[] = "--help";
	char *argv[] = {name, help, NULL};

	snprintf(name, sizeof(name), "%s", sub->name);
	optind = 0;
	if (sub->list != NULL)
		(void)ctl_run_list(ctl, sub->list, 2, argv);
	else if (sub->action != NULL)
		(void)ctl_run_action(ctl, sub->action, 2, argv);
	else
		(void)sub->run(ctl, 2, argv);
}

int
ctl_probe_group(struct ctl *ctl, const char *group, const char *summary,
		const struct ctl_subcmd *subs, size_t n)
{
	struct ctl_probe *p = ctl->probe;
	struct probe_node *node = probe_add(p, p->current);
	char saved[PROBE_PATH_MAX];

	(void)group;
	if (node == NULL)
		return CTL_EXIT_OK;
	node->group = true;
	if (node->summary[0] == '\0')
		first_line(node->summary, sizeof(node->summary), summary);
	snprintf(saved, sizeof(saved), "%s", p->current);
	for (size_t i = 0; i < n; i++) {
		if (node->nkids < PROBE_MAX_KIDS) {
			snprintf(node->kids[node->nkids], sizeof(node->kids[0]),
				 "%s", subs[i].name);
			first_line(node->kid_summary[node->nkids],
				   sizeof(node->kid_summary[0]),
				   subs[i].summary);
			node->nkids++;
		}
		if (strlen(saved) + 1 + strlen(subs[i].name) >=
		    sizeof(p->current)) {
			p->overflow = true;
			continue;
		}
		memcpy(p->current, saved, strlen(saved));
		p->current[strlen(saved)] = ' ';
		memcpy(p->current + strlen(saved) + 1, subs[i].name,
		       strlen(subs[i].name) + 1);
		first_line(p->summary, sizeof(p->summary), subs[i].summary);
		probe_sub(ctl, &subs[i]);
	}
	snprintf(p->current, sizeof(p->current), "%s", saved);
	return CTL_EXIT_OK;
}

/* Walks every top-level command; p->nodes[0] is fleetctl itself. */
static int
probe_all(struct ctl *ctl, struct ctl_probe *p)
{
	static const struct option global[] = {CTL_LONGOPTS_GLOBAL};
	struct probe_node *root = probe_add(p, "");
	const char *name;
	int (*run)(struct ctl *, int, char **);

	root->group = true;
	for (size_t i = 0; i < sizeof(global) / sizeof(global[0]); i++) {
		const char *value =
			global[i].has_arg != no_argument
				? (global[i].val == 'o'		 ? "table|json"
				   : global[i].val == CTL_OPT_CA ? "FILE"
								 : "VALUE")
				: "";
		char opt[48];

		snprintf(opt, sizeof(opt), "--%s", global[i].name);
		node_add_opt(root, opt, strlen(opt), value, strlen(value), "");
	}
	node_add_opt(root, "--version", 9, "", 0, "");
	for (size_t i = 0; ctl_command_at(i, &name, &run) == 0; i++) {
		char argv0[64], help[] = "--help";
		char *argv[] = {argv0, help, NULL};

		if (root->nkids < PROBE_MAX_KIDS)
			snprintf(root->kids[root->nkids++],
				 sizeof(root->kids[0]), "%s", name);
		snprintf(argv0, sizeof(argv0), "%s", name);
		snprintf(p->current, sizeof(p->current), "%s", name);
		p->summary[0] = '\0';
		optind = 0;
		(void)run(ctl, 2, argv);
	}
	/* The top-level summaries are the ones the commands gave. */
	for (size_t k = 0; k < root->nkids; k++) {
		for (size_t j = 1; j < p->n; j++) {
			if (strcmp(p->nodes[j].path, root->kids[k]) == 0)
				snprintf(root->kid_summary[k],
					 sizeof(root->kid_summary[0]), "%s",
					 p->nodes[j].summary);
		}
	}
	if (p->overflow)
		return ctl_fail("completion: more commands than %d",
				PROBE_MAX_NODES);
	return CTL_EXIT_OK;
}

/* Writes s inside a quoted word of the target syntax: 's' a POSIX shell
 * single-quoted word ('\'' for a quote), 'f' a fish single-quoted one
 * (\' and \\), 'd' a fish double-quoted one (\", \\, \$). Control
 * characters are dropped. */
static void
put_quoted(const char *s, char mode)
{
	for (; *s != '\0'; s++) {
		if ((unsigned char)*s < 0x20)
			continue;
		if (mode == 's' && *s == '\'')
			fputs("'\\''", stdout);
		else if (mode == 'f' && (*s == '\'' || *s == '\\'))
			printf("\\%c", *s);
		else if (mode == 'd' && strchr("\"\\$", *s) != NULL)
			printf("\\%c", *s);
		else
			putchar(*s);
	}
}

/* The option's value is a file name. */
static bool
value_is_file(const char *value)
{
	return strstr(value, "FILE") != NULL || strstr(value, "PATH") != NULL ||
	       strstr(value, "DIR") != NULL;
}

/* "a|b|c" values to offer, or NULL. */
static bool
value_is_choice(const char *value)
{
	return strchr(value, '|') != NULL && strchr(value, '<') == NULL;
}

/* Whether option j of node i appeared before (same name, with a value
 * if it has one), so that each option is listed once across commands. */
static bool
opt_seen_before(const struct ctl_probe *p, size_t i, size_t j)
{
	const struct probe_opt *o = &p->nodes[i].opts[j];

	for (size_t k = 0; k <= i; k++) {
		for (size_t m = 0; m < p->nodes[k].nopts && (k < i || m < j);
		     m++) {
			const struct probe_opt *q = &p->nodes[k].opts[m];

			if (strcmp(q->name, o->name) == 0 &&
			    (q->value[0] != '\0') == (o->value[0] != '\0'))
				return true;
		}
	}
	return false;
}

/* The options that take a value, across all commands (words after them
 * are values, not command names). */
static void
put_value_opts(const struct ctl_probe *p, const char *sep)
{
	bool first = true;

	for (size_t i = 0; i < p->n; i++) {
		for (size_t j = 0; j < p->nodes[i].nopts; j++) {
			const struct probe_opt *o = &p->nodes[i].opts[j];

			if (o->value[0] == '\0' || opt_seen_before(p, i, j))
				continue;
			printf("%s%s", first ? "" : sep, o->name);
			if (strcmp(o->name, "--output") == 0)
				printf("%s-o", sep);
			first = false;
		}
	}
}

/* Value completions by option name: files or a fixed choice. */
static void
put_value_cases(const struct ctl_probe *p, const char *shell)
{
	for (size_t i = 0; i < p->n; i++) {
		for (size_t j = 0; j < p->nodes[i].nopts; j++) {
			const struct probe_opt *o = &p->nodes[i].opts[j];
			bool file = value_is_file(o->value);
			bool choice = value_is_choice(o->value);
			char words[64];

			if ((!file && !choice) || opt_seen_before(p, i, j))
				continue;
			snprintf(words, sizeof(words), "%s", o->value);
			for (char *c = words; *c != '\0'; c++)
				*c = *c == '|' ? ' ' : *c;
			if (strcmp(shell, "bash") == 0 && file)
				printf("\t%s) COMPREPLY=($(compgen -f -- "
				       "\"$cur\")); return ;;\n",
				       o->name);
			else if (strcmp(shell, "bash") == 0)
				printf("\t%s%s) COMPREPLY=($(compgen -W '%s' "
				       "-- \"$cur\")); return ;;\n",
				       o->name,
				       strcmp(o->name, "--output") == 0 ? "|-o"
									: "",
				       words);
			else if (file)
				printf("\t(%s) _files; return ;;\n", o->name);
			else
				printf("\t(%s%s) compadd %s; return ;;\n",
				       o->name,
				       strcmp(o->name, "--output") == 0 ? "|-o"
									: "",
				       words);
		}
	}
}

static void
emit_bash(const struct ctl_probe *p)
{
	const struct probe_node *root = &p->nodes[0];

	printf("# bash completion for fleetctl %s, generated by "
	       "'fleetctl completion bash'\n",
	       FLEET_PROJECT_VERSION);
	printf("_fleetctl() {\n"
	       "\tlocal cur=${COMP_WORDS[COMP_CWORD]} "
	       "prev=${COMP_WORDS[COMP_CWORD-1]}\n"
	       "\tlocal cmd= skip= i w\n"
	       "\tfor ((i = 1; i < COMP_CWORD; i++)); do\n"
	       "\t\tw=${COMP_WORDS[i]}\n"
	       "\t\tif [ -n \"$skip\" ]; then skip=; continue; fi\n"
	       "\t\tcase $w in\n"
	       "\t\t");
	put_value_opts(p, "|");
	printf(") skip=1 ;;\n"
	       "\t\t-*) ;;\n"
	       "\t\t*) cmd=\"$cmd${cmd:+ }$w\" ;;\n"
	       "\t\tesac\n"
	       "\tdone\n"
	       "\tcase $prev in\n");
	put_value_cases(p, "bash");
	printf("\tesac\n"
	       "\tcase $cmd in\n");
	for (size_t i = 0; i < p->n; i++) {
		const struct probe_node *n = &p->nodes[i];

		printf("\t'");
		put_quoted(n->path, 's');
		printf("') COMPREPLY=($(compgen -W '");
		for (size_t k = 0; k < n->nkids; k++)
			printf("%s%s", k > 0 ? " " : "", n->kids[k]);
		for (size_t k = 0; k < n->nopts; k++)
			printf(" %s", n->opts[k].name);
		if (i > 0) {
			for (size_t k = 0; k < root->nopts; k++) {
				if (strcmp(root->opts[k].name, "--version") !=
				    0)
					printf(" %s", root->opts[k].name);
			}
		}
		printf("' -- \"$cur\")) ;;\n");
	}
	printf("\t*) COMPREPLY=() ;;\n"
	       "\tesac\n"
	       "}\n"
	       "complete -o default -F _fleetctl fleetctl\n");
}

static void
zsh_describe(const char *name, const char *desc)
{
	printf(" '");
	put_quoted(name, 's');
	if (desc[0] != '\0') {
		char clean[PROBE_TEXT_MAX];
		size_t j = 0;

		/* _describe splits at the first unescaped colon. */
		for (size_t i = 0; desc[i] != '\0' && j + 2 < sizeof(clean);
		     i++) {
			if (desc[i] == ':')
				clean[j++] = '\\';
			clean[j++] = desc[i];
		}
		clean[j] = '\0';
		putchar(':');
		put_quoted(clean, 's');
	}
	putchar('\'');
}

static void
emit_zsh(const struct ctl_probe *p)
{
	const struct probe_node *root = &p->nodes[0];

	printf("#compdef fleetctl\n"
	       "# zsh completion for fleetctl %s, generated by 'fleetctl "
	       "completion zsh'\n",
	       FLEET_PROJECT_VERSION);
	printf("_fleetctl() {\n"
	       "\tlocal -a path_words items\n"
	       "\tlocal i w skip=\n"
	       "\tfor ((i = 2; i < CURRENT; i++)); do\n"
	       "\t\tw=${words[i]}\n"
	       "\t\tif [[ -n $skip ]]; then skip=; continue; fi\n"
	       "\t\tcase $w in\n"
	       "\t\t(");
	put_value_opts(p, "|");
	printf(") skip=1 ;;\n"
	       "\t\t(-*) ;;\n"
	       "\t\t(*) path_words+=($w) ;;\n"
	       "\t\tesac\n"
	       "\tdone\n"
	       "\tcase ${words[CURRENT-1]} in\n");
	put_value_cases(p, "zsh");
	printf("\tesac\n"
	       "\tcase \"${(j: :)path_words}\" in\n");
	for (size_t i = 0; i < p->n; i++) {
		const struct probe_node *n = &p->nodes[i];

		printf("\t('");
		put_quoted(n->path, 's');
		printf("') items=(");
		for (size_t k = 0; k < n->nkids; k++)
			zsh_describe(n->kids[k], n->kid_summary[k]);
		printf(" ) ;;\n");
	}
	printf("\t(*) items=() ;;\n"
	       "\tesac\n"
	       "\tlocal -a opts\n"
	       "\tcase \"${(j: :)path_words}\" in\n");
	for (size_t i = 0; i < p->n; i++) {
		const struct probe_node *n = &p->nodes[i];

		printf("\t('");
		put_quoted(n->path, 's');
		printf("') opts=(");
		for (size_t k = 0; k < n->nopts; k++)
			zsh_describe(n->opts[k].name, n->opts[k].desc);
		printf(" ) ;;\n");
	}
	printf("\tesac\n"
	       "\topts+=(");
	for (size_t k = 0; k < root->nopts; k++) {
		if (strcmp(root->opts[k].name, "--version") != 0)
			zsh_describe(root->opts[k].name, "");
	}
	printf(" )\n"
	       "\tif [[ ${words[CURRENT]} == -* ]]; then\n"
	       "\t\t_describe -t options 'option' opts\n"
	       "\telif (( ${#items} )); then\n"
	       "\t\t_describe -t commands 'command' items\n"
	       "\telse\n"
	       "\t\t_files\n"
	       "\tfi\n"
	       "}\n"
	       "_fleetctl \"$@\"\n");
}

static void
emit_fish(const struct ctl_probe *p)
{
	const struct probe_node *root = &p->nodes[0];

	printf("# fish completion for fleetctl %s, generated by 'fleetctl "
	       "completion fish'\n",
	       FLEET_PROJECT_VERSION);
	/* The words so far that are command names, as one string. */
	printf("function __fleetctl_path\n"
	       "\tset -l words (commandline -opc)\n"
	       "\tset -l path\n"
	       "\tset -l skip 0\n"
	       "\tfor w in $words[2..-1]\n"
	       "\t\tif test $skip = 1\n"
	       "\t\t\tset skip 0\n"
	       "\t\t\tcontinue\n"
	       "\t\tend\n"
	       "\t\tswitch $w\n"
	       "\t\tcase ");
	put_value_opts(p, " ");
	printf("\n\t\t\tset skip 1\n"
	       "\t\tcase '-*'\n"
	       "\t\tcase '*'\n"
	       "\t\t\tset path $path $w\n"
	       "\t\tend\n"
	       "\tend\n"
	       "\techo (string join ' ' -- $path)\n"
	       "end\n"
	       "function __fleetctl_at\n"
	       "\tset -l p (__fleetctl_path)\n"
	       "\ttest \"$p\" = \"$argv[1]\"\n"
	       "end\n"
	       "complete -c fleetctl -f\n");
	for (size_t k = 0; k < root->nopts; k++) {
		const struct probe_opt *o = &root->opts[k];

		printf("complete -c fleetctl -l %s%s%s%s\n", o->name + 2,
		       strcmp(o->name, "--output") == 0 ? " -s o" : "",
		       o->value[0] == '\0'	   ? ""
		       : value_is_file(o->value)   ? " -r -F"
		       : value_is_choice(o->value) ? " -x -a 'table json'"
						   : " -x",
		       "");
	}
	for (size_t i = 0; i < p->n; i++) {
		const struct probe_node *n = &p->nodes[i];

		for (size_t k = 0; k < n->nkids; k++) {
			printf("complete -c fleetctl -n '__fleetctl_at \"");
			put_quoted(n->path, 'd');
			printf("\"' -a '");
			put_quoted(n->kids[k], 'f');
			printf("' -d '");
			put_quoted(n->kid_summary[k], 'f');
			printf("'\n");
		}
		for (size_t k = 0; k < n->nopts; k++) {
			const struct probe_opt *o = &n->opts[k];

			if (i == 0)
				break; /* the global ones, above */
			printf("complete -c fleetctl -n '__fleetctl_at \"");
			put_quoted(n->path, 'd');
			printf("\"' -l '");
			put_quoted(o->name + 2, 'f');
			printf("'%s -d '", o->value[0] == '\0'	     ? ""
					   : value_is_file(o->value) ? " -r -F"
								     : " -x");
			put_quoted(o->desc, 'f');
			printf("'\n");
		}
	}
}

int
ctl_cmd_completion(struct ctl *ctl, int argc, char **argv)
{
	struct ctl_probe *probe;
	const char *shell;
	int rc;

	if (ctl->probe != NULL) {
		/* The shells are its argument: offered like subcommands. */
		static const char *const shells[] = {"bash", "zsh", "fish"};
		size_t before = ctl->probe->n;

		(void)ctl_probe_help(ctl, &completion_help);
		for (size_t i = 0; ctl->probe->n > before && i < 3; i++) {
			struct probe_node *node =
				&ctl->probe->nodes[ctl->probe->n - 1];

			snprintf(node->kids[node->nkids], sizeof(node->kids[0]),
				 "%s", shells[i]);
			snprintf(node->kid_summary[node->nkids],
				 sizeof(node->kid_summary[0]),
				 "completion script for %s", shells[i]);
			node->nkids++;
		}
		return CTL_EXIT_OK;
	}
	rc = ctl_parse(ctl, &completion_help, argc, argv, NULL, 1);
	if (rc != CTL_CONTINUE)
		return rc;
	shell = argv[optind];
	if (strcmp(shell, "bash") != 0 && strcmp(shell, "zsh") != 0 &&
	    strcmp(shell, "fish") != 0 && strcmp(shell, "commands") != 0)
		return ctl_usage(&completion_help,
				 "unknown shell '%s': bash, zsh or fish",
				 shell);
	probe = calloc(1, sizeof(*probe));
	if (probe == NULL)
		return ctl_fail("out of memory");
	ctl->probe = probe;
	rc = probe_all(ctl, probe);
	ctl->probe = NULL;
	if (rc == CTL_EXIT_OK) {
		if (strcmp(shell, "bash") == 0)
			emit_bash(probe);
		else if (strcmp(shell, "zsh") == 0)
			emit_zsh(probe);
		else if (strcmp(shell, "fish") == 0)
			emit_fish(probe);
		for (size_t i = 1;
		     strcmp(shell, "commands") == 0 && i < probe->n; i++)
			printf("%s\n", probe->nodes[i].path);
	}
	free(probe);
	return rc;
}
