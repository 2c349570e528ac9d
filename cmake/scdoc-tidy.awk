# scdoc-tidy.awk: move or drop the paragraph breaks scdoc emits where no
# paragraph starts (after a heading or another break, before a heading or
# the end of an indented block), which `mandoc -T lint` reports as warnings.
# The page renders the same.
{ line[NR] = $0 }
END {
	prev = ""
	for (i = 1; i <= NR; i++) {
		l = line[i]
		nl = i < NR ? line[i + 1] : ".SH"
		if (l == ".P" && nl == ".RE") {
			# The break belongs after the block it ends.
			line[i + 1] = ".P"
			l = ".RE"
			nl = i + 1 < NR ? line[i + 2] : ".SH"
			print l
			prev = l
			continue
		}
		if (l == ".P" && (prev ~ /^\.(TH|SH|SS|P)( |$)/ ||
		    nl ~ /^\.(SH|SS|P)( |$)/))
			continue
		print l
		prev = l
	}
}
