#!/bin/sh
# A local apt repository holding rb-canary 1.0 and 1.1, for the rolling upgrade test: prepare
# installs 1.0, so the upgrade has one real package to change. 1.1's postinst stops the demo
# application when /var/lib/rb-canary/break exists: the tests' way to make a host fail its
# health check after (and because of) its upgrade.
set -eu
repo=/srv/rb-repo
mkdir -p "$repo"
for version in 1.0 1.1; do
    root=$(mktemp -d)
    mkdir -p "$root/DEBIAN" "$root/usr/share/rb-canary"
    echo "$version" > "$root/usr/share/rb-canary/version"
    cat > "$root/DEBIAN/control" <<EOF
Package: rb-canary
Version: $version
Architecture: all
Maintainer: commons.infra lab <lab@example.invalid>
Description: lab canary for the rolling upgrade test
EOF
    if [ "$version" = 1.1 ]; then
        cat > "$root/DEBIAN/postinst" <<'EOF'
#!/bin/sh
if [ -e /var/lib/rb-canary/break ]; then systemctl stop demo.service || true; fi
EOF
        chmod 0755 "$root/DEBIAN/postinst"
    fi
    dpkg-deb --build --root-owner-group "$root" "$repo/rb-canary_${version}_all.deb" >/dev/null
    rm -rf "$root"
done
cd "$repo"
: > Packages.new
for deb in rb-canary_1.0_all.deb rb-canary_1.1_all.deb; do
    {
        dpkg-deb -f "$deb"
        echo "Filename: ./$deb"
        echo "Size: $(stat -c %s "$deb")"
        echo "SHA256: $(sha256sum "$deb" | cut -d' ' -f1)"
        echo
    } >> Packages.new
done
mv Packages.new Packages
echo "deb [trusted=yes] file:$repo ./" > /etc/apt/sources.list.d/rb-canary.list
