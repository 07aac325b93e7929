# Warnings for our own targets, probed so that gcc and clang both work. With FY_WERROR=ON (the Makefile and CI
# turn it on) every warning is an error (issue 2); a plain CMake build, such as a packager's, only warns, so that a
# new compiler's new warning does not break it (issue 14).
include(CheckCCompilerFlag)
set(FY_C_WARNINGS -Wall -Wextra)
set(FY_CXX_WARNINGS -Wall -Wextra)
if(FY_WERROR)
  list(APPEND FY_C_WARNINGS -Werror)
  list(APPEND FY_CXX_WARNINGS -Werror)
endif()
foreach(flag -Wshadow -Wstrict-prototypes -Wmissing-prototypes -Wpointer-arith -Wvla -Wformat=2 -Wno-format-nonliteral)
  string(MAKE_C_IDENTIFIER "HAVE${flag}" var)
  check_c_compiler_flag(${flag} ${var})
  if(${var})
    list(APPEND FY_C_WARNINGS ${flag})
  endif()
endforeach()

function(fy_target_warnings target)
  target_compile_options(${target} PRIVATE $<$<COMPILE_LANGUAGE:C>:${FY_C_WARNINGS}>
                                           $<$<COMPILE_LANGUAGE:CXX>:${FY_CXX_WARNINGS}>)
endfunction()
