package Clinic::Provider;
# A key provider of a test's own: an httpd (Clinic::Httpd) with mod_ssl
# serving files over HTTPS for "localhost" only, with a server certificate of
# a test CA made here with openssl (ca_file), and a second CA that signed
# nothing (other_ca_file). Its port is chosen when it is made, so a clinic
# can be pointed at it before it is started; one access log line a request:
# "%r %>s".
#
#   my $p = Clinic::Provider->new("$dir/pki");
#   $p->serve('u/jwks.json', $text); $p->start; $p->base . '/u/jwks.json'
use strict;
use warnings;

use Exporter 'import';
use File::Path qw(make_path);
use File::Basename qw(dirname);
use Clinic::Httpd ();

our @EXPORT_OK = qw(write_file run_quiet);

# $path holds $text (written beside it and renamed: readers never see half).
sub write_file {
    my ($path, $text) = @_;
    open(my $fh, '>', "$path.new") or die "$path: $!";
    print $fh $text;
    close $fh or die "$path: $!";
    rename("$path.new", $path) or die "$path: $!";
}

sub run_quiet {
    my (@cmd) = @_;
    my $out = `@{[ join ' ', map { quotemeta } @cmd ]} 2>&1`;
    die "@cmd: $out" if $?;
    return $out;
}

# The two CAs and the server's key and certificate, in $pki.
sub make_pki {
    my ($pki) = @_;
    make_path($pki);
    for my $ca ('ca', 'other-ca') {
        run_quiet('openssl', 'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256',
                  '-nodes', '-keyout', "$pki/$ca.key", '-out', "$pki/$ca.pem", '-days', '2',
                  '-subj', "/CN=clinic test $ca", '-addext', 'basicConstraints=critical,CA:TRUE',
                  '-addext', 'keyUsage=critical,keyCertSign');
    }
    write_file("$pki/srv.ext", "subjectAltName=DNS:localhost\nbasicConstraints=CA:FALSE\n"
                             . "extendedKeyUsage=serverAuth\n");
    run_quiet('openssl', 'req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes',
              '-keyout', "$pki/srv.key", '-out', "$pki/srv.csr", '-subj', '/CN=localhost');
    run_quiet('openssl', 'x509', '-req', '-in', "$pki/srv.csr", '-CA', "$pki/ca.pem", '-CAkey',
              "$pki/ca.key", '-CAcreateserial', '-out', "$pki/srv.pem", '-days', '2', '-extfile',
              "$pki/srv.ext");
}

sub new {
    my ($class, $pki) = @_;
    make_pki($pki);
    my $h = Clinic::Httpd->new;
    my $self = bless { pki => $pki, httpd => $h, docs => $h->dir . '/htdocs' }, $class;
    my $m = $ENV{CLINIC_MODDIR};
    mkdir $self->{docs};
    $h->write_conf(<<"CONF");
LoadModule mime_module "$m/mod_mime.so"
LoadModule ssl_module "$m/mod_ssl.so"
StartServers 1
ServerLimit 1
ThreadsPerChild 8
MaxRequestWorkers 8
MinSpareThreads 1
MaxSpareThreads 8
SSLEngine on
SSLCertificateFile "$pki/srv.pem"
SSLCertificateKeyFile "$pki/srv.key"
DocumentRoot "$self->{docs}"
TypesConfig /dev/null
AddType application/json .json
LogFormat "%r %>s" fetch
CustomLog "@{[ $h->dir ]}/access_log" fetch
<Directory "$self->{docs}">
    Require all granted
</Directory>
CONF
    return $self;
}

sub httpd         { $_[0]{httpd} }
sub port          { $_[0]{httpd}->port }
sub dir           { $_[0]{httpd}->dir }
sub docs          { $_[0]{docs} }
sub base          { 'https://localhost:' . $_[0]->port }
sub ca_file       { "$_[0]{pki}/ca.pem" }
sub other_ca_file { "$_[0]{pki}/other-ca.pem" }
sub stop          { $_[0]{httpd}->stop }

# Serve $text at $path (below the document root; folders made as needed).
sub serve {
    my ($self, $path, $text) = @_;
    make_path(dirname("$self->{docs}/$path"));
    write_file("$self->{docs}/$path", $text);
}

sub start {
    my ($self) = @_;
    $self->{httpd}->start;
    return $self;
}

1;
