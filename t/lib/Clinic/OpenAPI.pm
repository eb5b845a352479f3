package Clinic::OpenAPI;
# Holds the module to openapi/clinic.yaml: every response a test file
# receives (through LWP, so Apache::TestRequest's GET/POST/..., post_json
# and send_method, forked children included, and raw_request's parsed
# answers) is recorded, and when the file calls done_testing one more test
# runs openapi/check-responses.mjs over them: a route's response with an
# undocumented status, a missing required header or a body that does not
# match its schema fails it, naming the response and the test it followed.
#
#   CLINIC_OPENAPI=dir   the openapi/ folder with node_modules (scripts/test.sh sets it)
use strict;
use warnings;

use Encode ();
use JSON::PP ();
use Fcntl qw(:flock);
use File::Basename qw(basename);
use HTTP::Response ();
use LWP::UserAgent ();
use Test::More ();
use Test2::API qw(test2_stack);
use Apache::Test ();

my $json = JSON::PP->new->utf8->canonical;
my $parent = $$;
my $dir = $ENV{CLINIC_OPENAPI} // 'openapi';
my $records = Apache::Test::vars('t_logs') . '/openapi-' . basename($0, '.t') . '.jsonl';
unlink $records;

sub record {
    my ($method, $path, $res) = @_;
    return if ($res->header('Client-Warning') // '') eq 'Internal response';   # LWP's, not the server's
    my %h;
    for my $name ($res->headers->header_field_names) {
        next if $name =~ /^Client-/;
        $h{$name} = join ', ', $res->header($name);
    }
    my $bytes = $res->content // '';
    my $text = eval { Encode::decode('UTF-8', $bytes, Encode::FB_CROAK) } // $bytes;
    my $tb = Test::More->builder;
    my $line = $json->encode({ method => $method, path => $path, status => $res->code + 0,
                               headers => \%h, body => $text,
                               where => basename($0) . ' after test ' . $tb->current_test
                                        . ($$ == $parent ? '' : " (child $$)") }) . "\n";
    open(my $fh, '>>', $records) or die "$records: $!";
    flock($fh, LOCK_EX);
    print $fh $line;
    close $fh;
}

# Every LWP exchange of this process and its children.
{
    no warnings 'redefine';
    my $orig = \&LWP::UserAgent::request;
    *LWP::UserAgent::request = sub {
        my $res = $orig->(@_);
        record($res->request->method, $res->request->uri->path_query, $res)
            if $res && $res->request;
        return $res;
    };
}

# raw_request: the request's text and the answer's text.
sub record_raw {
    my ($request, $response) = @_;
    my ($method, $path) = $request =~ m{^(\S+) (\S+) HTTP/} or return;
    my ($head, $body) = split /\r?\n\r?\n/, $response, 2;
    return unless defined $head && $head =~ m{^HTTP/};
    $head =~ s/\r//g;
    my $res = HTTP::Response->parse("$head\n\n" . ($body // ''));
    record($method, $path, $res);
}

# check(doc => FILE): run the checker over this file's responses so far;
# returns (exit status, its output lines).
sub check {
    my %o = @_;
    my @doc = $o{doc} ? ('--doc', $o{doc}) : ();
    open(my $fh, '-|', 'node', "$dir/check-responses.mjs", @doc, $records) or die "node: $!";
    my @out = <$fh>;
    close $fh;
    return ($?, @out);
}

sub records_file { $records }
sub dir { $dir }

test2_stack()->top->follow_up(sub {
    return unless $$ == $parent && -e $records;
    my ($rc, @out) = check();
    my ($summary) = grep { /^checked / } @out;
    chomp(my $s = $summary // 'the checker did not run');
    Test::More::ok($rc == 0 && defined $summary, "openapi/clinic.yaml holds every response: $s")
        or Test::More::diag(join '', @out);
});

1;
