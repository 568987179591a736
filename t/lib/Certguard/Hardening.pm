package Certguard::Hardening;

# What hardening-check (devscripts) reports on an ELF file, read with
# readelf (binutils): RELRO, BIND_NOW, PIE (executables), the stack
# protector and _FORTIFY_SOURCE (calls to the checking __*_chk functions).
#
#   my $h = hardening($path);   # { relro, bindnow, pie, stack_protector,
#                               #   fortify, error }: 1 or 0 each

use strict;
use warnings;

use Exporter qw(import);

use Certguard::Test qw(run);

our @EXPORT = qw(hardening);


sub hardening {
    my ($path) = @_;
    my $r = run({ timeout => 30 }, 'readelf', '-W', '--file-header',
                '--program-headers', '--dynamic', '--dyn-syms', $path);
    my $out = $r->{out};

    return { error => "readelf $path: $r->{err}" } if $r->{exit};

    return {
        relro           => $out =~ /^\s*GNU_RELRO\s/m ? 1 : 0,
        bindnow         => $out =~ /\(FLAGS\)\s.*\bBIND_NOW\b/
                           || $out =~ /\(FLAGS_1\)\s.*\bNOW\b/ ? 1 : 0,
        pie             => $out =~ /\(FLAGS_1\)\s.*\bPIE\b/ ? 1 : 0,
        stack_protector => $out =~ /\bUND __stack_chk_fail\b/ ? 1 : 0,
        fortify         => $out =~ /\bUND __(?!stack_chk_)\w+_chk\b/ ? 1 : 0,
        error           => '',
    };
}

1;
