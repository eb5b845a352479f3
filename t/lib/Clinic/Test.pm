package Clinic::Test;
# Helpers for mod_clinic's Apache::Test suite: real tokens from tools/mkjwt
# (real keys made by scripts/test.sh), JSON requests, the test database
# through DBI, and an ordered JSON encoder so that tests compare whole
# response bodies byte for byte, key order included.
use strict;
use warnings;

use Exporter 'import';
use JSON::PP ();
use DBI ();
use IO::Socket::INET ();
use Apache::Test ();
use Apache::TestRequest ();
use Test::More ();
use Clinic::Token ();
use Clinic::OpenAPI ();   # every response is checked against openapi/clinic.yaml

our @EXPORT = qw(token post_json jbody dbh db_kind ojson raw_request
                 count_rows new_hex24 keys_dir send_method own_httpd_env);
our @EXPORT_OK = qw(common_headers);

my $json = JSON::PP->new->utf8->allow_nonref;

sub keys_dir { $ENV{CLINIC_KEYS} }

# Everything secret or personal the suite sends is recorded, so that the
# last test can show none of it reached the error log.
sub record_sent {
    my ($file, $text) = @_;
    open(my $fh, '>>', Apache::Test::vars('t_logs') . "/$file") or die "$file: $!";
    $text =~ s/\n/ /g;
    print $fh "$text\n";
    close $fh;
}
sub db_kind  { $ENV{CLINIC_DB} }

# For tests that run an httpd of their own (configtest cases, a provider, a
# server with several children): (httpd, module dir, mod_clinic.so, keys dir)
# from scripts/test.sh's environment; the test is skipped without them.
sub own_httpd_env {
    my @env = ($ENV{CLINIC_HTTPD}, $ENV{CLINIC_MODDIR}, $ENV{CLINIC_MODULE}, keys_dir());
    Test::More::plan(skip_all => 'CLINIC_HTTPD, CLINIC_MODDIR, CLINIC_MODULE and CLINIC_KEYS are needed')
        if grep { !$_ } @env;
    return @env;
}

# token(alg => 'RS256', claims => {...}, kid => ..., exp_in => ..., no_exp => 1, key => path)
sub token {
    my %o = @_;
    my $alg = $o{alg} // 'RS256';
    my $key = $o{key} // ($alg =~ /^RS/ ? keys_dir() . '/rsa-private.pem'
                        : $alg =~ /^ES/ ? keys_dir() . '/ec-private.pem'
                        : $alg =~ /^HS/ ? keys_dir() . '/hs-secret' : undef);
    my $t = Clinic::Token::mint(%o, alg => $alg, key => $key, mkjwt => $ENV{CLINIC_MKJWT});
    record_sent('sent-tokens.txt', $t);
    return $t;
}

# The headers every JSON answer carries: three tests. Exported on request,
# use Clinic::Test qw(:DEFAULT common_headers).
sub common_headers {
    my ($res, $what) = @_;
    local $Test::Builder::Level = $Test::Builder::Level + 1;
    Test::More::is($res->header('Content-Type'), 'application/json', "$what: Content-Type");
    Test::More::is($res->header('Cache-Control'), 'no-store', "$what: Cache-Control");
    Test::More::is($res->header('X-Content-Type-Options'), 'nosniff', "$what: nosniff");
}

# post_json($path, $body, token => ..., type => ..., headers => [...], method => 'POST')
# $body: a string sent as is, or a reference encoded as JSON.
sub post_json {
    my ($path, $body, %o) = @_;
    my @h;
    push @h, 'Authorization' => "Bearer $o{token}" if defined $o{token};
    push @h, 'Content-Type' => $o{type} // 'application/json' unless exists $o{type} && !defined $o{type};
    push @h, @{ $o{headers} || [] };
    $body = $json->encode($body) if ref $body;
    record_sent('sent-bodies.txt', $body) if length $body < 100_000;
    my $method = $o{method} // 'POST';
    no strict 'refs';
    return &{"Apache::TestRequest::$method"}($path, @h, content => $body);
}

# Any method, for those Apache::TestRequest has no shortcut for.
sub send_method {
    my ($method, $path, @headers) = @_;
    require HTTP::Request;
    my $req = HTTP::Request->new($method => Apache::TestRequest::resolve_url($path), [@headers]);
    return Apache::TestRequest::user_agent()->request($req);
}

sub jbody {
    my ($res) = @_;
    my $v = eval { $json->decode($res->content) };
    return $v;
}

my $dbh;
sub dbh {
    $dbh ||= DBI->connect($ENV{CLINIC_DB_DSN}, '', '',
                          { RaiseError => 1, AutoCommit => 1, PrintError => 0 });
    $dbh->{sqlite_unicode} = 1 if db_kind() eq 'sqlite';
    $dbh->{pg_enable_utf8} = 1 if db_kind() eq 'pgsql';
    return $dbh;
}

sub count_rows {
    my ($sql, @bind) = @_;
    my ($n) = dbh()->selectrow_array("SELECT count(*) FROM $sql", undef, @bind);
    return $n;
}

sub new_hex24 { Clinic::Token::new_hex24() }

# Ordered JSON: ojson([k => v, ...]) for objects, [[...]] for arrays via
# JSON::PP for scalars. Objects are array refs of pairs blessed as 'O'.
sub ojson {
    my ($v) = @_;
    if (ref $v eq 'Clinic::O') {
        my @kv = @$v;
        my @parts;
        while (@kv) {
            my ($k, $x) = splice @kv, 0, 2;
            push @parts, $json->encode("$k") . ':' . ojson($x);
        }
        return '{' . join(',', @parts) . '}';
    }
    return '[' . join(',', map { ojson($_) } @$v) . ']' if ref $v eq 'ARRAY';
    return $json->encode($v);
}
sub O { bless [@_], 'Clinic::O' }

# A raw HTTP exchange for what LWP will not send (chunked bodies, odd framing).
sub raw_request {
    my ($text, %o) = @_;
    my $sock = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
                                     PeerPort => Apache::Test::vars('port'),
                                     Timeout => $o{timeout} // 10) or die "connect: $!";
    print $sock $text;
    local $/;
    my $resp = <$sock> // '';
    close $sock;
    # by_apache: a request httpd itself refuses before any module runs; its
    # HTML answer is Apache's, not the API's, so it is not held to the document.
    Clinic::OpenAPI::record_raw($text, $resp) unless $o{by_apache};
    return $resp;
}

1;
