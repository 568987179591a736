#!/usr/bin/perl

# Runs the engine's C unit tests (t/unit/*.c, built by "make unit" into
# build/unit/ and, with AddressSanitizer and UBSan, build/unit-asan/) so
# that one prove run reports them with everything else: each binary is a
# subtest, each of its TAP lines an assertion here.

use warnings;
use strict;

use Test::More;

BEGIN { use FindBin; chdir($FindBin::Bin); }

use lib 'lib';
use Certguard::Test qw(build_dir repo_root);
use Cwd qw();
use TAP::Parser;

###############################################################################

my @sources = map { m{([^/]+)\.c$} } sort glob(repo_root() . '/t/unit/*.c');
ok(@sources > 0, 't/unit has unit tests');

# sanitizers: fail on the first report, leaks included
local $ENV{ASAN_OPTIONS} = 'detect_leaks=1:abort_on_error=0:exitcode=23';
local $ENV{UBSAN_OPTIONS} = 'print_stacktrace=1:halt_on_error=1:exitcode=24';

for my $flavour (qw/unit unit-asan/) {
    for my $name (@sources) {
        my $bin = build_dir() . "/$flavour/$name";

        subtest "$flavour/$name" => sub {
            ok(-x $bin, "$bin is built (make unit)") or return;
            unit($bin);
        };
    }
}

done_testing();

###############################################################################

# Re-states every result of one TAP-producing binary as an assertion of its
# own, then checks its plan and exit status.
sub unit {
    my ($bin) = @_;
    my ($parser, $err, $n);

    # unit tests read fixtures relative to the repository root
    my $cwd = Cwd::getcwd();
    chdir(repo_root()) or die "chdir: $!";
    $err = '';
    $parser = TAP::Parser->new({
        exec  => [$bin],
        merge => 0,
    });

    $n = 0;
    while (my $r = $parser->next) {
        if ($r->is_test) {
            $n++;
            local $TODO = $r->explanation if $r->has_todo;
            if ($r->has_skip) {
                SKIP: { skip($r->explanation, 1) }
                next;
            }
            ok($r->is_actual_ok, $r->description =~ s/^\s*-\s*//r
                                 || "test " . $r->number);
        } elsif ($r->is_comment) {
            note($r->as_string);
        } elsif ($r->is_bailout) {
            fail("bail out: " . $r->explanation);
        }
    }

    chdir($cwd);
    ok($n > 0, "$bin ran tests");
    ok(!$parser->parse_errors, "$bin: TAP without errors")
        or diag(join "\n", $parser->parse_errors);
    is($parser->tests_run, $parser->tests_planned // -1,
       "$bin: ran as many tests as planned");
    is($parser->exit, 0, "$bin: exit status 0");
    is($parser->wait & 127, 0, "$bin: no signal");
}
