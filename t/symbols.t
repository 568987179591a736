#!/usr/bin/perl

# What the built modules export: nginx dlopen()s them with RTLD_GLOBAL, so
# a symbol of the engine (cg_*) or of the shared glue (ngx_certguard_*)
# left visible joins nginx's namespace, twice, once from each module.  Each
# module must export exactly the tables of its generated *_modules.c and
# its module variable (src/nginx/ngx_certguard.map), and must define every
# engine and glue symbol it uses.

use warnings;
use strict;

use Test::More;

BEGIN { use FindBin; chdir($FindBin::Bin); }

use lib 'lib';
use Certguard::Test qw(module_path run);

###############################################################################

my $NM = '/usr/bin/nm';

plan(skip_all => "no $NM (binutils)") unless -x $NM;

for my $module (qw(ngx_http_certguard_module ngx_stream_certguard_module)) {
    my $so = module_path($module);

    # the HTTP module is always built; the stream one where stream is
    if (!-e $so) {
        BAIL_OUT("no $so: run 'make' (or set CERTGUARD_BUILD)")
            if $module =~ /_http_/;
        note("no $so: not checked");
        next;
    }

    my $r = run($NM, '-D', '--defined-only', $so);
    is($r->{exit}, 0, "$module: nm -D runs") or diag($r->{err});

    my @syms = sort map { (split ' ')[-1] } grep { /\S/ }
               split /\n/, $r->{out};

    is_deeply(\@syms,
              [sort $module, qw(ngx_module_names ngx_module_order ngx_modules)],
              "$module: exports only its module variable and nginx's tables")
        or diag(join ' ', @syms);

    my @leaked = grep { /^(?:cg_|ngx_certguard_)/ } @syms;
    is(scalar @leaked, 0, "$module: no engine or shared glue symbol exported")
        or diag(join ' ', @leaked);

    # hidden, but linked in: none of them is left for nginx to resolve
    $r = run($NM, '-D', '--undefined-only', $so);
    my @missing = grep { /^(?:cg_|ngx_certguard_)/ }
                  map { (split ' ')[-1] } grep { /\S/ } split /\n/, $r->{out};
    is(scalar @missing, 0, "$module: no engine or glue symbol undefined")
        or diag(join ' ', @missing);
}

done_testing();
