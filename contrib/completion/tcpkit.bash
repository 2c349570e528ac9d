# tcpkit.bash: bash completion for tcpkit: commands, options, services, modes.
# Commands and options are read from the program's own help, so they follow
# it; installed as .../bash-completion/completions/tcpkit.

# The option names of `tcpkit CMD --help`: those that start a line of it or
# follow a comma there ("-p, --port PORT"), not those named in passing.
_tcpkit_options()
{
	"$1" ${2:+"$2"} --help 2>/dev/null |
		grep -oE -- '(^ +|, )--?[[:alnum:]][[:alnum:]-]*' | tr -d ' ,' |
		sort -u
}

_tcpkit()
{
	local tk=${COMP_WORDS[0]} cur=${COMP_WORDS[COMP_CWORD]}
	local prev=${COMP_WORDS[COMP_CWORD - 1]} cmd=${COMP_WORDS[1]} words

	if [ "$COMP_CWORD" -eq 1 ]; then
		words="$("$tk" help 2>/dev/null |
			sed -n 's/^  \([a-z][a-z]*\)  .*/\1/p') --help --version"
		COMPREPLY=($(compgen -W "$words" -- "$cur"))
		return
	fi
	case $prev in
	--cert | --key | --cacert | --client-ca | --message-file | --csv | --plot | \
		--allow-file | --deny-file | --hexdump | -x | -o | --output | --handoff)
		compopt -o filenames 2>/dev/null
		COMPREPLY=($(compgen -f -- "$cur"))
		return
		;;
	--capath)
		compopt -o filenames 2>/dev/null
		COMPREPLY=($(compgen -d -- "$cur"))
		return
		;;
	--owner)
		COMPREPLY=($(compgen -u -- "$cur"))
		return
		;;
	--group)
		COMPREPLY=($(compgen -g -- "$cur"))
		return
		;;
	--exec)
		COMPREPLY=($(compgen -c -- "$cur"))
		return
		;;
	--log-format) words="text logfmt json" ;;
	-p | --ports) [ "$cmd" = scan ] && words="- 1-1024 22,80,443" ;;
	--client-auth) words="optional required" ;;
	--tls-min) words="1.2 1.3" ;;
	--send-proxy) words="v1 v2" ;;
	--proxy) words="socks5:// socks5h:// socks4a:// http://" ;;
	*)
		case $cur in
		-*) words=$(_tcpkit_options "$tk" "$cmd") ;;
		*)
			# bench merge FILE...: the documents to merge.
			if [ "$cmd" = bench ] && [ "$COMP_CWORD" -ge 3 ] &&
				[ "${COMP_WORDS[2]}" = merge ]; then
				compopt -o filenames 2>/dev/null
				COMPREPLY=($(compgen -f -- "$cur"))
				return
			fi
			[ "$COMP_CWORD" -eq 2 ] || return
			case $cmd in
			serve) words="echo discard welcome basic line broker chat socks5" ;;
			bench) words="echo bulk rate greet idle merge" ;;
			help)
				words=$("$tk" help 2>/dev/null |
					sed -n 's/^  \([a-z][a-z]*\)  .*/\1/p')
				;;
			*) return ;;
			esac
			;;
		esac
		;;
	esac
	COMPREPLY=($(compgen -W "$words" -- "$cur"))
}

complete -F _tcpkit tcpkit
