/*
 * GeoIP: the destination's country and autonomous system from MaxMind DB
 * files (GeoLite2/GeoIP2 Country, City and ASN layouts).
 *
 * The databases are memory-mapped once; lookups only read the mapping, so
 * one cg_geoip_t serves every worker and thread (libmaxminddb lookups are
 * thread-safe on an opened MMDB_s).
 */

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <maxminddb.h>

#include "cg_internal.h"


struct cg_geoip_s {
    MMDB_s          country;
    MMDB_s          asn;
    unsigned        has_country:1;
    unsigned        has_asn:1;
};


static int cg_geoip_open_one(MMDB_s *db, const char *path, cg_error_t *err);
static void cg_geoip_lookup_db(const MMDB_s *db, const char *addr,
    cg_geo_t *out);
static void cg_geoip_string(MMDB_entry_s *entry, char *buf, size_t len,
    const char *const *path);


static int
cg_geoip_open_one(MMDB_s *db, const char *path, cg_error_t *err)
{
    int  rc;

    errno = 0;
    rc = MMDB_open(path, MMDB_MODE_MMAP, db);

    if (rc == MMDB_FILE_OPEN_ERROR && errno != 0) {
        return cg_errorf(err, CG_ERR_IO, path, 0, "%s: %s (%s)", path,
                         MMDB_strerror(rc), strerror(errno));
    }

    if (rc != MMDB_SUCCESS) {
        return cg_errorf(err, rc == MMDB_FILE_OPEN_ERROR ? CG_ERR_IO
                                                         : CG_ERR_INPUT,
                         path, 0, "%s: %s", path, MMDB_strerror(rc));
    }

    return CG_OK;
}


int
cg_geoip_open(cg_geoip_t **geoip, const char *country_db, const char *asn_db,
    cg_error_t *err)
{
    int          rc;
    cg_geoip_t  *g;

    *geoip = NULL;

    g = calloc(1, sizeof(cg_geoip_t));
    if (g == NULL) {
        return cg_errorf(err, CG_ERR_NOMEM, NULL, 0, "out of memory");
    }

    if (country_db) {
        rc = cg_geoip_open_one(&g->country, country_db, err);
        if (rc != CG_OK) {
            free(g);
            return rc;
        }

        g->has_country = 1;
    }

    if (asn_db) {
        rc = cg_geoip_open_one(&g->asn, asn_db, err);
        if (rc != CG_OK) {
            cg_geoip_free(g);
            return rc;
        }

        g->has_asn = 1;
    }

    *geoip = g;

    return CG_OK;
}


void
cg_geoip_free(cg_geoip_t *geoip)
{
    if (geoip == NULL) {
        return;
    }

    if (geoip->has_country) {
        MMDB_close(&geoip->country);
    }

    if (geoip->has_asn) {
        MMDB_close(&geoip->asn);
    }

    free(geoip);
}


static void
cg_geoip_string(MMDB_entry_s *entry, char *buf, size_t len,
    const char *const *path)
{
    size_t                n;
    MMDB_entry_data_s     data;

    if (MMDB_aget_value(entry, &data, path) != MMDB_SUCCESS
        || !data.has_data || data.type != MMDB_DATA_TYPE_UTF8_STRING)
    {
        return;
    }

    n = data.data_size < len - 1 ? data.data_size : len - 1;
    memcpy(buf, data.utf8_string, n);
    buf[n] = '\0';
}


/* Takes from one database whatever it has and out still lacks, so a City
 * or an Enterprise database in either slot works too. */
static void
cg_geoip_lookup_db(const MMDB_s *db, const char *addr, cg_geo_t *out)
{
    int                    gai, rc;
    MMDB_entry_data_s      data;
    MMDB_lookup_result_s   r;

    static const char *const  country[] = { "country", "iso_code", NULL };
    static const char *const  registered[] = { "registered_country",
                                               "iso_code", NULL };
    static const char *const  asn[] = { "autonomous_system_number", NULL };
    static const char *const  org[] = { "autonomous_system_organization",
                                        NULL };

    /* MMDB_lookup_string takes a non-const MMDB_s but only reads it */
    r = MMDB_lookup_string((MMDB_s *) db, addr, &gai, &rc);

    if (gai != 0 || rc != MMDB_SUCCESS || !r.found_entry) {
        return;
    }

    if (out->country[0] == '\0') {
        cg_geoip_string(&r.entry, out->country, sizeof(out->country),
                        country);
    }

    if (out->country[0] == '\0') {
        cg_geoip_string(&r.entry, out->country, sizeof(out->country),
                        registered);
    }

    if (out->asn == 0
        && MMDB_aget_value(&r.entry, &data, asn) == MMDB_SUCCESS
        && data.has_data)
    {
        if (data.type == MMDB_DATA_TYPE_UINT32) {
            out->asn = data.uint32;

        } else if (data.type == MMDB_DATA_TYPE_UINT16) {
            out->asn = data.uint16;

        } else if (data.type == MMDB_DATA_TYPE_UINT64
                   && data.uint64 <= UINT32_MAX)
        {
            out->asn = (uint32_t) data.uint64;
        }
    }

    if (out->as_org[0] == '\0') {
        cg_geoip_string(&r.entry, out->as_org, sizeof(out->as_org), org);
    }
}


int
cg_geoip_lookup(const cg_geoip_t *g, const char *addr, cg_geo_t *out)
{
    memset(out, 0, sizeof(cg_geo_t));

    if (g == NULL || addr == NULL || addr[0] == '\0') {
        return -1;
    }

    if (g->has_country) {
        cg_geoip_lookup_db(&g->country, addr, out);
    }

    if (g->has_asn) {
        cg_geoip_lookup_db(&g->asn, addr, out);
    }

    return out->country[0] || out->asn ? 0 : -1;
}
