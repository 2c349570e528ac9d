# uninstall.cmake: `make uninstall`: remove exactly what the installs from this
# build directory wrote: the files of install_manifest.txt, then the
# directories they created (install_dirs.txt) if empty; then refresh ld.so's
# cache as the install did.  A staged install (DESTDIR) is removed from where
# it was staged, whatever DESTDIR says now.
#   cmake -DBUILD=build -P cmake/uninstall.cmake
set(_tk_manifest "${BUILD}/install_manifest.txt")
set(_tk_record "${BUILD}/install_dirs.txt")
if(NOT EXISTS "${_tk_manifest}")
	message(FATAL_ERROR "${_tk_manifest}: no such file: nothing was "
		"installed from this build directory")
endif()
# The manifest's paths are without the DESTDIR the install was staged in:
# that one, not today's environment, says where the files are.
set(_tk_destdir "")
if(EXISTS "${_tk_record}.destdir")
	file(READ "${_tk_record}.destdir" _tk_destdir)
endif()
set(ENV{DESTDIR} "${_tk_destdir}")
file(STRINGS "${_tk_manifest}" _tk_files)
foreach(f ${_tk_files})
	set(f "${_tk_destdir}${f}")
	if(IS_SYMLINK "${f}" OR EXISTS "${f}")
		message(STATUS "Removing: ${f}")
		file(REMOVE "${f}")
		if(f MATCHES "/libtcpkit\\.so$")
			get_filename_component(TK_LIBDIR "${f}" DIRECTORY)
		endif()
	endif()
endforeach()
if(EXISTS "${_tk_record}")
	file(STRINGS "${_tk_record}" _tk_dirs)
	# Children before their parents.
	list(SORT _tk_dirs)
	list(REVERSE _tk_dirs)
	foreach(d ${_tk_dirs})
		file(GLOB _tk_left "${d}/*" "${d}/.*")
		if(IS_DIRECTORY "${d}" AND NOT _tk_left)
			message(STATUS "Removing: ${d}/")
			execute_process(COMMAND rmdir "${d}")
		endif()
	endforeach()
	file(REMOVE "${_tk_record}")
endif()
file(REMOVE "${_tk_record}.destdir")
file(REMOVE "${_tk_manifest}")
if(DEFINED TK_LIBDIR)
	include(${CMAKE_CURRENT_LIST_DIR}/ldconfig.cmake)
endif()
