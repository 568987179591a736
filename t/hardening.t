#!/usr/bin/perl

# The default build is hardened like Debian's packages (dpkg-buildflags,
# hardening=+all): build/certguard and both modules have RELRO and
# BIND_NOW, call the stack protector and the _FORTIFY_SOURCE checking
# functions, and the CLI is a PIE.  A program built without any of it
# shows that the check can tell the difference.

use warnings;
use strict;

use Test::More;

BEGIN { use FindBin; chdir($FindBin::Bin); }

use lib 'lib';
use Certguard::Test qw(:all);
use Certguard::Hardening;

###############################################################################

plan(skip_all => 'no readelf (binutils)')
    unless grep { -x "$_/readelf" } split /:/, $ENV{PATH};

my @files = (
    [ cli    => need_cli() ],
    [ http   => module_path() ],
    [ stream => module_path('ngx_stream_certguard_module') ],
);

for my $f (@files) {
    my ($name, $path) = @$f;
    my $h = hardening($path);

    is($h->{error}, '', "$name: readelf reads $path");
    ok($h->{relro}, "$name: RELRO");
    ok($h->{bindnow}, "$name: BIND_NOW");
    ok($h->{stack_protector}, "$name: stack protector");
    ok($h->{fortify}, "$name: _FORTIFY_SOURCE");
    ok($h->{pie}, "$name: PIE") if $name eq 'cli';
}

# the control: the same check on a program built with none of it

my $dir = tempdir();
write_file("$dir/soft.c", <<'C');
#include <stdio.h>
#include <string.h>

int
main(int argc, char **argv)
{
    char buf[16];

    strcpy(buf, argc > 1 ? argv[1] : "x");
    printf("%s\n", buf);
    return 0;
}
C

my $r = run({ timeout => 60 }, 'cc', '-O2', '-fno-stack-protector',
            '-U_FORTIFY_SOURCE', '-D_FORTIFY_SOURCE=0', '-no-pie',
            '-Wl,-z,norelro', '-Wl,-z,lazy', '-o', "$dir/soft",
            "$dir/soft.c");
is($r->{exit}, 0, 'control: an unhardened program builds') or diag($r->{err});

my $h = hardening("$dir/soft");
is($h->{error}, '', 'control: readelf reads it');
ok(!$h->{relro}, 'control: no RELRO found');
ok(!$h->{bindnow}, 'control: no BIND_NOW found');
ok(!$h->{pie}, 'control: not a PIE');
ok(!$h->{stack_protector}, 'control: no stack protector found');
ok(!$h->{fortify}, 'control: no _FORTIFY_SOURCE found');

done_testing();
