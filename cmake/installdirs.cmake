# installdirs.cmake: run first at install time: note which of the install
# directories do not exist yet, so that `make uninstall` removes those it made
# (when empty again) and no others; and the DESTDIR, which install_manifest.txt
# leaves out.  Input: TK_DIRS (relative to the prefix), TK_RECORD (the file,
# kept across installs until an uninstall).
set(_tk_new)
if(EXISTS "${TK_RECORD}")
	file(STRINGS "${TK_RECORD}" _tk_new)
endif()
foreach(d ${TK_DIRS})
	if(NOT IS_ABSOLUTE "${d}")
		set(d "${CMAKE_INSTALL_PREFIX}/${d}")
	endif()
	set(d "$ENV{DESTDIR}${d}")
	# Each missing ancestor too, deepest first.
	while(NOT EXISTS "${d}")
		list(APPEND _tk_new "${d}")
		get_filename_component(d "${d}" DIRECTORY)
	endwhile()
endforeach()
list(REMOVE_DUPLICATES _tk_new)
string(REPLACE ";" "\n" _tk_new "${_tk_new}")
file(WRITE "${TK_RECORD}" "${_tk_new}\n")
file(WRITE "${TK_RECORD}.destdir" "$ENV{DESTDIR}")
