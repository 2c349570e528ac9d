# ldconfig.cmake: after an install or uninstall, rebuild the dynamic linker's
# cache when the library directory is one it searches (/usr/local/lib), so a
# program linked with -ltcpkit runs at once.  Input: TK_LIBDIR (relative to
# CMAKE_INSTALL_PREFIX, or absolute).  Nothing is done for a staged install
# (DESTDIR: the files are not where they will run), for a directory ld.so does
# not search (a private prefix: LD_LIBRARY_PATH or an rpath is the user's
# choice), or when not root (the cache is root's).
if(IS_ABSOLUTE "${TK_LIBDIR}")
	set(_tk_dir "${TK_LIBDIR}")
else()
	set(_tk_dir "${CMAKE_INSTALL_PREFIX}/${TK_LIBDIR}")
endif()
get_filename_component(_tk_dir "${_tk_dir}" ABSOLUTE)
find_program(_tk_ldconfig ldconfig PATHS /sbin /usr/sbin)
execute_process(COMMAND id -u OUTPUT_VARIABLE _tk_uid
	OUTPUT_STRIP_TRAILING_WHITESPACE)
if("$ENV{DESTDIR}" STREQUAL "" AND _tk_ldconfig AND _tk_uid STREQUAL "0")
	# -N -X -v: print the searched directories, change nothing.
	execute_process(COMMAND ${_tk_ldconfig} -N -X -v
		OUTPUT_VARIABLE _tk_dirs ERROR_QUIET)
	string(REGEX MATCHALL "(^|\n)/[^\n:]*:" _tk_dirs "${_tk_dirs}")
	set(_tk_searched FALSE)
	foreach(d ${_tk_dirs})
		string(STRIP "${d}" d)
		string(REGEX REPLACE ":$" "" d "${d}")
		get_filename_component(d "${d}" REALPATH)
		get_filename_component(_tk_real "${_tk_dir}" REALPATH)
		if(d STREQUAL _tk_real)
			set(_tk_searched TRUE)
		endif()
	endforeach()
	if(_tk_searched)
		message(STATUS "Running: ldconfig (${_tk_dir})")
		execute_process(COMMAND ${_tk_ldconfig} RESULT_VARIABLE _tk_rc)
		if(NOT _tk_rc EQUAL 0)
			message(FATAL_ERROR "ldconfig failed: ${_tk_rc}")
		endif()
	endif()
endif()
