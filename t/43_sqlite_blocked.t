# SQLite, the embedded default, when it cannot write (docs/API.md §8): the
# file locked by another process, a full file system (a small tmpfs filled
# for real), a read-only directory and a read-only file. Each answers 503
# with Retry-After in the route's shape within ClinicDBTimeout, writes
# nothing, logs what to do, and clears by itself once the cause is gone,
# with no restart. A COMMIT that fails leaves no transaction open on the
# pooled connection.
use strict;
use warnings FATAL => 'all';

use Test::More;
use DBI ();
use File::Temp ();
use HTTP::Tiny ();
use JSON::PP ();
use Time::HiRes qw(time sleep);
use lib 't/lib';
use Clinic::Test;
use Clinic::Stall qw(stall_httpd);

plan skip_all => 'SQLite only' unless db_kind() eq 'sqlite';
own_httpd_env();

my $timeout = 3;
my $tok = token(claims => { sub => 'blocked', userId => 'doc-blocked' }, exp_in => 3600);
my $ua = HTTP::Tiny->new(timeout => 30);
my $json = JSON::PP->new->utf8;

# A clinic database of its own in $dir.
sub make_db {
    my ($dir) = @_;
    my $db = "$dir/clinic.db";
    for my $sql ('sql/schema-sqlite.sql', 'sql/demo-data.sql') {
        system("sqlite3 '$db' < $sql > /dev/null") == 0 or die "sqlite3 $sql";
    }
    return $db;
}

sub visit {
    my ($h, $status, %o) = @_;
    my $t0 = time;
    my $res = $ua->request('POST', $h->url('/visits'), {
        headers => { Authorization => "Bearer $tok", 'Content-Type' => 'application/json',
                     $o{key} ? ('Idempotency-Key' => $o{key}) : () },
        content => qq({"patient": 1750, "status": "$status"}) });
    $res->{took} = time - $t0;
    return $res;
}

sub link_req {
    my ($h) = @_;
    return $ua->request('POST', $h->url('/patients/add_and_link?uid=doc-blocked'), {
        headers => { Authorization => "Bearer $tok", 'Content-Type' => 'application/json' },
        content => '{"appointment_id": "' . new_hex24() . '", "firstName": "B", "lastName": "L"}' });
}

sub visits_like {
    my ($db, $pat) = @_;
    my $dbh = DBI->connect("dbi:SQLite:dbname=$db", '', '', { RaiseError => 1 });
    return $dbh->selectrow_array('SELECT count(*) FROM visits WHERE status LIKE ?', undef, $pat);
}

sub log_of { my ($h) = @_; open(my $fh, '<', $h->dir . '/error_log') or die; local $/; <$fh> }

my $drf503 = '{"detail":"The database is unavailable; retry later."}';
sub is_503 {
    my ($res, $what) = @_;
    is($res->{status}, 503, "$what: 503");
    is($res->{headers}{'retry-after'}, '5', "$what: Retry-After: 5");
    cmp_ok($res->{took}, '<=', $timeout + 1, sprintf("$what: answered in %.2f s", $res->{took}))
        if defined $res->{took};
}

# --- locked by another process ---
{
    my $dir = File::Temp::tempdir('clinic-locked-XXXXXX', TMPDIR => 1, CLEANUP => 1);
    my $db = make_db($dir);
    my $h = stall_httpd(driver => 'sqlite3', params => $db, threads => 8, dbd_max => 4,
                        timeout => $timeout);
    is(visit($h, 'locked-warm')->{status}, 200, 'locked: warm-up visit recorded');
    my $locker = DBI->connect("dbi:SQLite:dbname=$db", '', '',
                              { RaiseError => 1, AutoCommit => 1, sqlite_use_immediate_transaction => 0 });
    $locker->do('BEGIN EXCLUSIVE');
    my $r = visit($h, 'locked-plain');
    is_503($r, 'locked, /visits without a key');
    is($r->{content}, $drf503, 'locked: the DRF body');
    is_503(visit($h, 'locked-keyed', key => "locked-$$"), 'locked, /visits with a key');
    my $l = link_req($h);
    is($l->{status}, 503, 'locked: add-and-link 503');
    is($json->decode($l->{content})->{code}, 'DATABASE_UNAVAILABLE', 'locked: add-and-link code');
    $locker->do('ROLLBACK');
    is(visits_like($db, 'locked-%'), 1, 'locked: nothing written while locked');
    is(visit($h, 'locked-after')->{status}, 200, 'lock released: recorded, no restart');
    my $again = visit($h, 'locked-keyed', key => "locked-$$");
    is($again->{status}, 200, 'the keyed request retried: 200');
    is(visits_like($db, 'locked-keyed'), 1, 'the keyed request: exactly one visit');
    unlike(log_of($h), qr/\[clinic:error\].*internal error/, 'locked: never a 500');
}

# --- a COMMIT refused: a reader in another process holds the file (a
# rollback-journal database: there a COMMIT waits for readers) ---
{
    my $dir = File::Temp::tempdir('clinic-commit-XXXXXX', TMPDIR => 1, CLEANUP => 1);
    my $db = make_db($dir);
    system("sqlite3 '$db' 'PRAGMA journal_mode=DELETE;' > /dev/null") == 0 or die 'journal_mode';
    my $h = stall_httpd(driver => 'sqlite3', params => $db, threads => 8, dbd_max => 2,
                        timeout => $timeout);
    is(visit($h, 'commit-warm')->{status}, 200, 'commit: warm-up visit recorded');
    my $reader = DBI->connect("dbi:SQLite:dbname=$db", '', '', { RaiseError => 1, AutoCommit => 1 });
    $reader->do('BEGIN');
    $reader->selectall_arrayref('SELECT count(*) FROM patients');   # a shared lock, held
    is_503(visit($h, 'commit-keyed', key => "commit-$$"), 'a COMMIT refused (busy)');
    $reader->do('ROLLBACK');
    my @after = map { visit($h, "commit-after-$_") } 1 .. 6;
    is(scalar(grep { $_->{status} == 200 } @after), 6,
       'the reader gone: recorded on every pooled connection (none was left in a transaction)')
        or diag(join ' ', map { $_->{status} } @after);
    is(visit($h, 'commit-keyed', key => "commit-$$")->{status}, 200, 'the refused request retried: 200');
    is(visits_like($db, 'commit-keyed'), 1, 'commit: exactly one visit for the key');
    $h->stop;
}

# --- a full file system: a tmpfs of the test's own, filled for real ---
SKIP: {
    my $fs = $ENV{CLINIC_FULLFS};
    skip 'no small tmpfs (scripts/test.sh mounts one when run as root)', 12 unless $fs && -d $fs && -w $fs;
    my $db = make_db($fs);
    my $h = stall_httpd(driver => 'sqlite3', params => $db, threads => 8, dbd_max => 4,
                        timeout => $timeout);
    is(visit($h, 'full-warm')->{status}, 200, 'full: warm-up visit recorded');
    my $before = visits_like($db, 'full-%');
    open(my $fill, '>', "$fs/filler") or die "$fs/filler: $!";
    my $chunk = 'x' x 4096;
    1 while print $fill $chunk;     # until ENOSPC
    close $fill;
    my @full = map { visit($h, "full-$_", key => "full-$$-$_") } 1 .. 5;
    is(scalar(grep { $_->{status} == 503 } @full), 5, 'full: every write answers 503')
        or diag(join ' ', map { $_->{status} } @full);
    is(scalar(grep { ($_->{headers}{'retry-after'} // '') eq '5' } @full), 5, 'full: Retry-After');
    is(scalar(grep { $_->{content} eq $drf503 } @full), 5, 'full: the DRF body');
    my $l = link_req($h);
    is($l->{status}, 503, 'full: add-and-link 503');
    like(log_of($h), qr/the file system of the SQLite database is full: free space there/,
         'full: the log says what to do');
    unlink "$fs/filler";
    is(visits_like($db, 'full-%'), $before, 'full: nothing written');
    my @after = map { visit($h, "full-after-$_") } 1 .. 10;
    is(scalar(grep { $_->{status} == 200 } @after), 10, 'space freed: 10 visits recorded, no restart');
    my @retry = map { visit($h, "full-$_", key => "full-$$-$_") } 1 .. 5;
    is(scalar(grep { $_->{status} == 200 } @retry), 5, 'full: the keyed requests retried: 200');
    is(visits_like($db, 'full-_'), 5, 'full: exactly one visit per key');
    is(visits_like($db, 'full-after-%'), 10, 'full: the pooled connections have no transaction left open');
    unlike(log_of($h), qr/internal error/, 'full: never a 500');
}

# --- read-only: a file Apache may not write (a root-owned file, say) ---
{
    my $dir = File::Temp::tempdir('clinic-ro-XXXXXX', TMPDIR => 1, CLEANUP => 1);
    my $db = make_db($dir);
    visits_like($db, '%');          # the WAL files exist, as after any use
    chmod 0444, $db;
    my $h = stall_httpd(driver => 'sqlite3', params => $db, threads => 8, dbd_max => 4,
                        timeout => $timeout);
    my @ro = map { visit($h, "ro-file-$_") } 1 .. 6;
    is(scalar(grep { $_->{status} == 503 } @ro), 6, 'a read-only file: 503')
        or diag(join ' ', map { $_->{status} } @ro);
    is(scalar(grep { $_->{content} eq $drf503 } @ro), 6, 'read-only: the DRF body');
    like(log_of($h), qr/read-only: make both writable by the user Apache runs as/,
         'read-only: the log says what to do');
    chmod 0644, $db;
    my @back = map { visit($h, "ro-file-after-$_") } 1 .. 10;
    is(scalar(grep { $_->{status} == 200 } @back), 10, 'the file writable again: recorded, no restart')
        or diag(join ' ', map { $_->{status} } @back);
    is(visits_like($db, 'ro-file-_'), 0, 'read-only: nothing written');
    unlike(log_of($h), qr/internal error/, 'read-only: never a 500');
}

done_testing();
