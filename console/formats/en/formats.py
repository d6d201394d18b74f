# Times in the admin carry their zone's name (the person's zone, see console.timezones).
DATETIME_FORMAT = "Y-m-d H:i:s T"
SHORT_DATETIME_FORMAT = "Y-m-d H:i T"
